/**
 * The local engine's execution histories: what Step Functions keeps for GetExecutionHistory,
 * kept as one JSON-lines file per execution beside the store (`<database>/history/`). An event
 * is appended, synchronously, as it happens, so a history survives the process that wrote it
 * (`kill -9` included) and any process on the machine can read it: a `laas ui` beside the
 * listener shows executions the listener runs.
 *
 * Only events (domain/execution-history.ts) are written, never a state's input or output.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  EXECUTION_EVENT_TYPES,
  type ExecutionEvent,
  type ExecutionEventType,
} from "../../domain/execution-history";

/** Where the local engine records what its executions went through. */
export interface ExecutionHistoryLog {
  append(execution: string, event: ExecutionEvent): void;
  /** The events in the order written; null when none was ever written for `execution`. */
  read(execution: string): Promise<ExecutionEvent[] | null>;
  /** Forgets an execution's history (its booking left the store: lifecycle/sweep.ts). */
  remove(execution: string): Promise<void>;
}

/** Histories held in memory only: for engines built without a store folder (tests, bundles). */
export class MemoryHistory implements ExecutionHistoryLog {
  readonly #events = new Map<string, ExecutionEvent[]>();

  append(execution: string, event: ExecutionEvent): void {
    const events = this.#events.get(execution) ?? [];
    events.push(event);
    this.#events.set(execution, events);
  }

  async read(execution: string): Promise<ExecutionEvent[] | null> {
    return this.#events.get(execution)?.slice() ?? null;
  }

  async remove(execution: string): Promise<void> {
    this.#events.delete(execution);
  }
}

const KNOWN_TYPES = new Set<string>(EXECUTION_EVENT_TYPES);
/** Execution names are Step Functions names: 1–80 of [A-Za-z0-9_-] (domain/booking.ts). */
const SAFE_NAME = /^[A-Za-z0-9_-]{1,80}$/;

export class ExecutionHistoryFiles implements ExecutionHistoryLog {
  readonly #dir: string;
  #made = false;

  constructor(dir: string) {
    this.#dir = dir;
  }

  append(execution: string, event: ExecutionEvent): void {
    if (!this.#made) {
      // Inside the store folder, which is its owner's alone (0700): so are the histories.
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      this.#made = true;
    }
    appendFileSync(this.#file(execution), `${JSON.stringify(event)}\n`, { mode: 0o600 });
  }

  async read(execution: string): Promise<ExecutionEvent[] | null> {
    let text: string;
    try {
      text = await readFile(this.#file(execution), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
    const events: ExecutionEvent[] = [];
    for (const line of text.split("\n")) {
      // The last line may be cut short by a crash mid-write; any line not an event is skipped.
      const event = parseEvent(line);
      if (event) events.push(event);
    }
    return events;
  }

  async remove(execution: string): Promise<void> {
    await rm(this.#file(execution), { force: true });
  }

  #file(execution: string): string {
    // A name is a file name here: refuse anything that could lead out of the folder.
    if (!SAFE_NAME.test(execution)) throw new Error(`not an execution name: ${execution}`);
    return join(this.#dir, `${execution}.jsonl`);
  }
}

function parseEvent(line: string): ExecutionEvent | null {
  if (line.trim() === "") return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const record = value as Record<string, unknown>;
  if (typeof record.type !== "string" || !KNOWN_TYPES.has(record.type)) return null;
  if (typeof record.at !== "string") return null;
  const text = (field: unknown) => (typeof field === "string" ? field : null);
  return {
    type: record.type as ExecutionEventType,
    at: record.at,
    state: text(record.state),
    error: text(record.error),
    cause: text(record.cause),
  };
}
