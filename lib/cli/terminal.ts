/**
 * What a long-running command (`listen`, `deploy`) shows while it works. The log file always gets
 * the JSON lines (lib/log.ts); the terminal gets, by mode:
 * - live (stdout is a terminal): one live line per active booking (live-view.ts), with warnings,
 *   errors and the command's own lines above them;
 * - plain (stdout is a file or a pipe): one line of text per log event, time and zone first
 *   (plain-log.ts), and the command's own lines as they are;
 * - json (`--json`): the log's JSON lines on stdout, as the file has them; the command's own
 *   lines go to stderr, so that stdout is JSON alone.
 */
import type { Level } from "pino";
import type { LogStream } from "../log";
import { LiveView } from "./live-view";
import { plainLogLine } from "./plain-log";

export type TerminalMode = "json" | "plain" | "live";

export function terminalMode(
  json: boolean,
  stdout: { isTTY?: boolean } = process.stdout,
): TerminalMode {
  if (json) return "json";
  return stdout.isTTY === true ? "live" : "plain";
}

export interface Terminal {
  readonly mode: TerminalMode;
  /** The command's own lines (what it started, how it ended). */
  say(line: string): void;
  /** Where the command's logger writes besides its file (createLogger's `streams`). */
  readonly streams: LogStream[];
  /** The live lines, in live mode. */
  readonly view: LiveView | null;
  /** Clears the live lines; called once the command's work is over. */
  close(): void;
}

export interface TerminalOptions {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Least level of the events shown as plain lines (`listen`: every info; `deploy`: warnings). */
  plainLevel: Level;
  /** Whether the log's events move the live lines (the listener's), or the command does. */
  eventsMoveLines: boolean;
}

export function openTerminal(mode: TerminalMode, options: TerminalOptions): Terminal {
  const { out, err } = options;
  if (mode === "json") {
    return {
      mode,
      say: err,
      streams: [{ write: (line) => out(line.replace(/\n$/, "")) }],
      view: null,
      close: () => undefined,
    };
  }
  if (mode === "plain") {
    return {
      mode,
      say: out,
      streams: [{ level: options.plainLevel, write: (line) => out(plainLogLine(line)) }],
      view: null,
      close: () => undefined,
    };
  }
  const view = new LiveView();
  const moves = options.eventsMoveLines;
  return {
    mode,
    say: (line) => view.print(line),
    streams: [
      {
        // Events that move nothing are only printed when they warn.
        ...(moves ? {} : { level: "warn" as const }),
        write: (line) => view.logLine(line, { moves }),
      },
    ],
    view,
    close: () => view.stop(),
  };
}
