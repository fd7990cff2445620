/**
 * The local engine's durable memory: one record per execution, kept in the embedded store's
 * database so that executions outlive the process that runs them. A listener restarted after
 * `kill -9` reads where each of its executions was and resumes it there; another process reads
 * whose an execution is and hands its work to that owner instead of running it twice.
 */
import type { Phase } from "../../domain/booking";
import type { JsonValue } from "../../domain/run";
import type { ExecutionStatus, PhaseInput } from "../../ports/engine";
import type { Updated, UpdateOptions } from "../../ports/store";
import type { ProcessId } from "./process-identity";

/** Where an execution is: the top-level state it entered last, with that state's input. */
export interface ExecutionPosition {
  state: string;
  input: JsonValue;
  /** ISO time the state was entered (a callback wait's TimeoutSeconds counts from here). */
  enteredAt: string;
}

export interface ExecutionRecord {
  name: string;
  phase: Phase;
  input: PhaseInput;
  status: ExecutionStatus;
  /** The process running it; null once handed over, for the next owner to adopt. */
  owner: ProcessId | null;
  startedAt: string;
  stoppedAt: string | null;
  /** Error name and cause of a failed execution (as Step Functions' ExecutionFailed event). */
  error: string | null;
  cause: string | null;
  position: ExecutionPosition | null;
  /** Set by another process that wants the execution stopped (its owner stops it). */
  stopRequested: string | null;
  /** States entered so far, retries included: Step Functions' billed state transitions. */
  transitions: number;
  updatedAt: string;
  version: number;
}

export interface ExecutionJournal {
  /** Creates the record; false when an execution of that name exists already. */
  create(record: ExecutionRecord): Promise<boolean>;
  get(name: string): Promise<ExecutionRecord | null>;
  list(): Promise<ExecutionRecord[]>;
  /** Compare-and-set on `version`, as the store's updates (see ports/store.ts). */
  update(
    name: string,
    change: (current: ExecutionRecord) => ExecutionRecord | null,
    options?: UpdateOptions<ExecutionRecord>,
  ): Promise<Updated<ExecutionRecord>>;
  /**
   * Forgets an execution that has ended (the sweep, once its booking is gone): only while the
   * record is at `ifVersion`, ConflictError otherwise.
   */
  remove(name: string, ifVersion: number): Promise<void>;
}
