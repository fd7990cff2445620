import { type Logger, pino } from "pino";
import { redactLogObject, redactValue } from "./log-redact";
import { ownerOnlyLogFile } from "./owner-only";

export type { Logger };

/**
 * JSON logs, one line per event, with correlation fields (bookingId, phase, execution) bound by
 * child loggers. Secrets are Secret objects and print as "[secret]" at any depth, and fields
 * named for a credential (password, token, apiKey, …; see lib/log-redact.ts) as "[redacted]", in
 * the logged object and in child bindings alike.
 */
export function createLogger(
  options: { level?: string; destination?: string; alsoStdout?: boolean } = {},
): Logger {
  const level = options.level ?? process.env.LAAS_LOG_LEVEL ?? "info";
  // Every value is redacted by type and by field name at any depth (lib/log-redact.ts); errors
  // are serialized there too, so pino's own `err` serializer has nothing left to do.
  const redact = {
    formatters: { log: redactLogObject },
    serializers: { err: (value: unknown) => value },
  };
  if (options.destination) {
    // The log is its owner's alone (0600, in a 0700 folder when laas makes it), whatever the umask.
    ownerOnlyLogFile(options.destination);
    const file = pino.destination({ dest: options.destination, sync: true });
    const streams = options.alsoStdout
      ? pino.multistream([{ stream: process.stdout }, { stream: file }])
      : file;
    return redactBindings(pino({ level, ...redact, base: { service: "laas" } }, streams));
  }
  return redactBindings(pino({ level, ...redact, base: { service: "laas" } }));
}

/**
 * pino applies `formatters.log` to the logged object but prints a child's bindings as given.
 * The root's `child` is replaced by one that redacts them first; every descendant inherits it
 * (a child logger is made with the logger it comes from as its prototype).
 */
function redactBindings(logger: Logger): Logger {
  const parentChild = Object.getPrototypeOf(logger).child as Logger["child"];
  Object.defineProperty(logger, "child", {
    value(this: Logger, bindings: Record<string, unknown>, options?: object) {
      return parentChild.call(this, redactValue(bindings) as Record<string, unknown>, options);
    },
  });
  return logger;
}

/** A logger that drops everything; for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: "silent" });
