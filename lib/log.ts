import { closeSync, fchmodSync, openSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { type Level, type Logger, pino } from "pino";
import { errorMessage } from "./errors";
import { redactLogObject, redactValue } from "./log-redact";
import { OWNER_ONLY_FILE, ownerOnlyLogFile } from "./owner-only";

export type { Logger };

/** The log file's name in `logging_dir`. */
export const LOG_FILE = "laas.log";
/** The folder of the per-booking logs in `logging_dir`. */
export const BOOKING_LOG_FOLDER = "bookings";

/** Somewhere else each log line goes (a terminal), with the least level it takes. */
export interface LogStream {
  level?: Level;
  /** One serialized JSON line, with its newline. */
  write(line: string): void;
}

export interface LoggerOptions {
  level?: string;
  /**
   * The log file (JSON lines). Each line that names a booking (`bookingId`) also goes to that
   * booking's own log, `bookings/<id>.log` beside it, as laas-fog kept a log per host.
   */
  destination?: string;
  /** More places each line goes; without a destination and streams, lines go to stdout. */
  streams?: LogStream[];
}

/**
 * JSON logs, one line per event, with ISO times and correlation fields (bookingId, phase,
 * execution) bound by child loggers. Secrets are Secret objects and print as "[secret]" at any
 * depth, and fields named for a credential (password, token, apiKey, …; see lib/log-redact.ts) as
 * "[redacted]", in the logged object and in child bindings alike — before any line is written, so
 * the file, the per-booking logs and the terminal get the same redacted line.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LAAS_LOG_LEVEL ?? "info";
  // Every value is redacted by type and by field name at any depth (lib/log-redact.ts); errors
  // are serialized there too, so pino's own `err` serializer has nothing left to do.
  const settings = {
    level,
    formatters: { log: redactLogObject },
    serializers: { err: (value: unknown) => value },
    timestamp: pino.stdTimeFunctions.isoTime,
    base: { service: "laas" },
  };
  // A silent logger writes nothing whatever its streams take.
  const least = (level === "silent" ? "fatal" : level) as Level;
  const entries: pino.StreamEntry[] = (options.streams ?? []).map((stream) => ({
    level: stream.level ?? least,
    stream,
  }));
  if (options.destination) {
    // The log is its owner's alone (0600, in a 0700 folder when laas makes it), whatever the umask.
    ownerOnlyLogFile(options.destination);
    const file = pino.destination({ dest: options.destination, sync: true });
    const bookings = new BookingLogs(join(dirname(options.destination), BOOKING_LOG_FOLDER));
    entries.push({ level: least, stream: file }, { level: least, stream: bookings });
  }
  if (entries.length === 0) return redactBindings(pino(settings));
  // Each stream gets the lines its own level lets through.
  return redactBindings(pino(settings, pino.multistream(entries)));
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

/** The first `"bookingId":"…"` of a serialized line (the JSON string, escapes included). */
const BOOKING_ID = /"bookingId":"((?:[^"\\]|\\.)*)"/;

/** The booking a serialized log line names, or null. A regex: no line is parsed to find it. */
export function bookingIdOfLine(line: string): string | null {
  const found = BOOKING_ID.exec(line)?.[1];
  if (found === undefined || found === "") return null;
  if (!found.includes("\\")) return found;
  try {
    return JSON.parse(`"${found}"`) as string;
  } catch {
    return null;
  }
}

/** Longest booking id given a log of its own (dashboard ids are numbers, manual ones ~40). */
const LONGEST_BOOKING_ID = 128;

/**
 * The file name of a booking's log: letters, digits, `-`, `_` and `.` as they are, any other
 * character (and a leading dot) as `%XX`, so that no id names a path outside the folder, a hidden
 * file, or another id's file. Null for an id too long to be a booking's.
 */
export function bookingLogName(bookingId: string): string | null {
  if (bookingId === "" || bookingId.length > LONGEST_BOOKING_ID) return null;
  const encode = (c: string) =>
    [...Buffer.from(c, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
  const safe = bookingId.replace(/[^A-Za-z0-9._-]/gu, encode).replace(/^\./, "%2e");
  return `${safe}.log`;
}

/** Where the log of `bookingId` is kept under `loggingDir`, or null (see bookingLogName). */
export function bookingLogFile(loggingDir: string, bookingId: string): string | null {
  const name = bookingLogName(bookingId);
  return name === null ? null : join(loggingDir, BOOKING_LOG_FOLDER, name);
}

/** Files kept open at once; the least recently written is closed first. */
const OPEN_BOOKING_LOGS = 32;

/**
 * The per-booking logs: every line naming a booking is appended to its file (0600, the folder
 * 0700 when laas makes it). A file that cannot be written is given up on, said once on stderr:
 * the main log has the line, and a log call never fails for it.
 */
class BookingLogs {
  readonly #folder: string;
  /** Booking id → open file, in order of last write (a Map keeps insertion order). */
  readonly #open = new Map<string, number>();
  readonly #failed = new Set<string>();

  constructor(folder: string) {
    this.#folder = folder;
  }

  write(line: string): void {
    const bookingId = bookingIdOfLine(line);
    if (bookingId === null || this.#failed.has(bookingId)) return;
    try {
      writeSync(this.#fileOf(bookingId), line);
    } catch (error) {
      this.#failed.add(bookingId);
      this.#close(bookingId);
      process.stderr.write(
        `laas: the log of booking ${bookingId} cannot be written (${errorMessage(error)}); ` +
          "its lines go to the main log only\n",
      );
    }
  }

  #fileOf(bookingId: string): number {
    const open = this.#open.get(bookingId);
    if (open !== undefined) {
      this.#open.delete(bookingId);
      this.#open.set(bookingId, open);
      return open;
    }
    const name = bookingLogName(bookingId);
    if (name === null) throw new Error("the id is too long for a file name");
    const file = join(this.#folder, name);
    ownerOnlyLogFile(file);
    const fd = openSync(file, "a", OWNER_ONLY_FILE);
    fchmodSync(fd, OWNER_ONLY_FILE);
    this.#open.set(bookingId, fd);
    for (const oldest of this.#open.keys()) {
      if (this.#open.size <= OPEN_BOOKING_LOGS) break;
      this.#close(oldest);
    }
    return fd;
  }

  #close(bookingId: string): void {
    const fd = this.#open.get(bookingId);
    if (fd === undefined) return;
    this.#open.delete(bookingId);
    try {
      closeSync(fd);
    } catch {
      // Already closed: nothing more to do.
    }
  }
}
