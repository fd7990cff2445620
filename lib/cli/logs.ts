/**
 * `laas logs BOOKING [--follow] [--json]`: one booking's log, as laas-fog kept a log file per
 * host. Every log line naming a booking is also written to `<logging_dir>/bookings/<id>.log`
 * (lib/log.ts), by whichever process did the work (the listener, a `laas deploy`); this prints
 * that file, a line of text per event (or its JSON lines with --json), and with --follow goes on
 * printing what is appended until Ctrl-C.
 */
import { existsSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";
import { bookingLogFile } from "../log";
import { loadAnyConfig } from "./config";
import { EXIT, UsageError } from "./exit";
import { plainLogLine } from "./plain-log";

/** How often --follow looks for new lines. */
const FOLLOW_MS = 250;
const CHUNK_BYTES = 64 * 1024;

export interface LogsOptions {
  config: string;
  bookingId: string;
  follow: boolean;
  json: boolean;
}

export async function logsCommand(
  options: LogsOptions,
  out: (line: string) => void,
): Promise<number> {
  const { lab } = await loadAnyConfig(options.config);
  const { bookingId } = options;
  const file = bookingLogFile(lab.loggingDir, bookingId);
  if (file === null) {
    throw new UsageError(`no booking has the id ${JSON.stringify(bookingId)}: it is too long`);
  }
  if (!existsSync(file)) {
    throw new UsageError(
      `no log for booking ${bookingId}: ${file} does not exist (a booking's log is written from ` +
        `its first event on, in the logging_dir of ${lab.file}); \`laas status --all\` lists ` +
        "the bookings",
    );
  }
  const print = (line: string) => {
    if (line.trim() === "") return;
    out(options.json ? line : plainLogLine(line));
  };
  const reader = new LogReader(file, print);
  await reader.readMore();
  if (!options.follow) {
    reader.end();
    return EXIT.ok;
  }
  const stopping = new AbortController();
  const stop = () => stopping.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    while (!stopping.signal.aborted) {
      await sleep(FOLLOW_MS, undefined, { signal: stopping.signal }).catch(() => undefined);
      await reader.readMore();
    }
    return EXIT.ok;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

/**
 * Reads a log file from where it stopped, line by line; a line still being written waits for
 * its end. A file that became shorter (emptied, replaced) is read again from its start.
 */
class LogReader {
  readonly #file: string;
  readonly #line: (line: string) => void;
  #offset = 0;
  #decoder = new StringDecoder("utf8");
  #pending = "";

  constructor(file: string, line: (line: string) => void) {
    this.#file = file;
    this.#line = line;
  }

  async readMore(): Promise<void> {
    const size = await stat(this.#file).then(
      (found) => found.size,
      () => 0,
    );
    if (size < this.#offset) {
      this.#offset = 0;
      this.#pending = "";
      this.#decoder = new StringDecoder("utf8");
    }
    if (size === this.#offset) return;
    const handle = await open(this.#file, "r");
    try {
      const buffer = Buffer.alloc(CHUNK_BYTES);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, this.#offset);
        if (bytesRead === 0) break;
        this.#offset += bytesRead;
        this.#add(this.#decoder.write(buffer.subarray(0, bytesRead)));
      }
    } finally {
      await handle.close();
    }
  }

  /** What is left without a newline is a line too, once nothing more is to come. */
  end(): void {
    this.#add(this.#decoder.end());
    if (this.#pending !== "") this.#line(this.#pending);
    this.#pending = "";
  }

  #add(text: string): void {
    const parts = (this.#pending + text).split("\n");
    this.#pending = parts.pop() ?? "";
    for (const part of parts) this.#line(part);
  }
}
