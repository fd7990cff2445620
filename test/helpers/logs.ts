import { Writable } from "node:stream";
import { type Logger, pino } from "pino";

/** A logger whose JSON lines are kept in memory, to assert on what was (not) logged. */
export function capturingLogger(level = "debug"): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}
