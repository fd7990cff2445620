/**
 * On a terminal, `laas listen` and `laas deploy` keep one live line per active booking (a
 * cli-progress MultiBar): the booking, its host, its stage (the booking's progress note), a bar
 * with FOG's percent while imaging (the note says which partition), and the time since its run
 * began here. Warnings and errors, and the command's own lines, are printed above the lines.
 *
 * The listener's view is fed by its log lines (logLine): each progress note written is logged
 * with the booking (lib/lifecycle/progress.ts), an execution's start and end are logged by the
 * engine. Nothing reads the store for it. `deploy` follows its booking in the store already (it
 * may be run by a listener in another process) and feeds the view from there (show, end).
 * The lines are drawn at most FPS times a second, however many events come.
 */
import { MultiBar, type SingleBar } from "cli-progress";
import { plainLogLine } from "./plain-log";

/** Redraws a second, at most. */
const FPS = 4;
/** Levels printed above the lines (pino's numbers: 40 warn, 50 error, 60 fatal). */
const WARN_LEVEL = 40;
const BAR_WIDTH = 20;

/** Messages of the engine's log lines that begin or end a booking's line. */
const STARTED = /^execution (started|resumed)/;
const ENDED = "execution ended";

/** What a booking's line shows, changed in place as events come. */
interface Line {
  bookingId: string;
  host: string;
  stage: string;
  execution: string | null;
  startedAt: number;
}

/** What a booking's line shows. */
export interface Shown {
  host?: string;
  stage?: string | null;
  execution?: string;
}

/** The percent and partition a progress note gives (watch-imaging.ts writes them). */
export function imagingOf(stage: string): { percent: number | null; partition: number | null } {
  const percent = /(\d+(?:\.\d+)?)%/.exec(stage)?.[1];
  const partition = /partition (\d+)/.exec(stage)?.[1];
  return {
    percent: percent === undefined ? null : Math.min(100, Number(percent)),
    partition: partition === undefined ? null : Number(partition),
  };
}

/** `12s`, `4m05s`, `2h03m`. */
export function elapsedText(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

function barText(percent: number): string {
  const full = Math.round((percent / 100) * BAR_WIDTH);
  return `[${"#".repeat(full)}${"-".repeat(BAR_WIDTH - full)}]`;
}

interface Payload {
  line: Line;
}

export class LiveView {
  readonly #stream: NodeJS.WriteStream;
  readonly #now: () => number;
  readonly #bars: MultiBar;
  readonly #lines = new Map<string, { line: Line; bar: SingleBar }>();
  #stopped = false;

  constructor(options: { stream?: NodeJS.WriteStream; now?: () => number } = {}) {
    this.#stream = options.stream ?? process.stdout;
    this.#now = options.now ?? Date.now;
    this.#bars = new MultiBar({
      stream: this.#stream,
      fps: FPS,
      clearOnComplete: true,
      hideCursor: false,
      // Ctrl-C is the command's to handle (it drains the listener): the lines stop with it.
      gracefulExit: false,
      format: (_options, _params, payload: Payload) => this.#format(payload.line),
    });
  }

  /** A log line (serialized JSON) of the process: its events move the lines; warnings show above. */
  logLine(line: string, options: { moves: boolean }): void {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const level = typeof event.level === "number" ? event.level : 0;
    if (level >= WARN_LEVEL) this.print(plainLogLine(line));
    if (!options.moves) return;
    const bookingId = typeof event.bookingId === "string" ? event.bookingId : null;
    if (bookingId === null) return;
    const message = typeof event.msg === "string" ? event.msg : "";
    const execution = typeof event.execution === "string" ? event.execution : undefined;
    if (message === ENDED) {
      this.end(bookingId, execution);
      return;
    }
    const progress = typeof event.progress === "string" ? event.progress : null;
    const host = typeof event.host === "string" ? event.host : undefined;
    if (STARTED.test(message)) {
      const phase = typeof event.phase === "string" ? event.phase : null;
      this.show(bookingId, {
        ...(host ? { host } : {}),
        ...(execution ? { execution } : {}),
        ...(this.#lines.has(bookingId) ? {} : { stage: phase ?? message }),
      });
    } else if (progress !== null) {
      this.show(bookingId, { ...(host ? { host } : {}), stage: progress });
    }
  }

  /** Shows (or updates) the line of a booking. */
  show(bookingId: string, shown: Shown): void {
    if (this.#stopped) return;
    const known = this.#lines.get(bookingId);
    if (!known) {
      const line: Line = {
        bookingId,
        host: shown.host ?? "",
        stage: shown.stage ?? "",
        execution: shown.execution ?? null,
        startedAt: this.#now(),
      };
      const bar = this.#bars.create(100, imagingOf(line.stage).percent ?? 0, { line });
      this.#lines.set(bookingId, { line, bar });
      return;
    }
    const { line, bar } = known;
    if (shown.host) line.host = shown.host;
    if (shown.stage !== undefined && shown.stage !== null) line.stage = shown.stage;
    if (shown.execution) line.execution = shown.execution;
    bar.update(imagingOf(line.stage).percent ?? 0, { line });
  }

  /** Takes a booking's line away: its execution (this one, when named) ended. */
  end(bookingId: string, execution?: string): void {
    const known = this.#lines.get(bookingId);
    if (!known) return;
    // A later run of the booking (its release) keeps its line.
    if (execution && known.line.execution && execution !== known.line.execution) return;
    this.#lines.delete(bookingId);
    this.#bars.remove(known.bar);
    if (this.#lines.size === 0) this.#bars.stop();
  }

  /** A line printed above the live lines (or as it is when there are none). */
  print(text: string): void {
    if (this.#bars.isActive && !this.#stopped) this.#bars.log(`${text}\n`);
    else this.#stream.write(`${text}\n`);
  }

  /** Clears the live lines; what is printed after goes to the terminal as it is. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    // Lines logged since the last redraw are drawn first.
    if (this.#bars.isActive) this.#bars.update();
    this.#bars.stop();
    this.#lines.clear();
  }

  /** The bookings shown, for tests. */
  shown(): string[] {
    return [...this.#lines.keys()];
  }

  #format(line: Line): string {
    const { percent } = imagingOf(line.stage);
    const bar = percent === null ? "" : ` ${barText(percent)}`;
    const host = line.host ? ` ${line.host}` : "";
    return `${line.bookingId}${host}  ${line.stage}${bar}  ${elapsedText(this.#now() - line.startedAt)}`;
  }
}
