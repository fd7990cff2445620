import { type Logger, pino } from "pino";

export type { Logger };

/**
 * JSON logs, one line per event, with correlation fields (bookingId, phase, execution) bound by
 * child loggers. Secrets are Secret objects and print as "[secret]"; the redact list is a second
 * net for fields that must never carry a value.
 */
export function createLogger(
  options: { level?: string; destination?: string; alsoStdout?: boolean } = {},
): Logger {
  const level = options.level ?? process.env.LAAS_LOG_LEVEL ?? "info";
  const redact = {
    paths: ["*.password", "*.token", "*.apiKey", "*.userKey", "*.pass", "headers.*"],
    censor: "[redacted]",
  };
  if (options.destination) {
    const file = pino.destination({ dest: options.destination, mkdir: true, sync: true });
    const streams = options.alsoStdout
      ? pino.multistream([{ stream: process.stdout }, { stream: file }])
      : file;
    return pino({ level, redact, base: { service: "laas" } }, streams);
  }
  return pino({ level, redact, base: { service: "laas" } });
}

/** A logger that drops everything; for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: "silent" });
