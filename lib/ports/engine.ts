import type { Phase } from "../domain/booking";

/** What a workflow execution is given: enough to find everything else in the store. */
export interface PhaseInput {
  bookingId: string;
  hostName: string;
  phase: Phase;
  generation: number;
}

export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";

/**
 * Runs the state machines in statemachines/. Two adapters run the very same files: AWS Step
 * Functions and the in-process local engine.
 */
export interface WorkflowEngine {
  /**
   * Starts `phase`'s state machine under `name`. Idempotent by name: a second start with the same
   * name starts nothing and answers started=false.
   */
  start(phase: Phase, name: string, input: PhaseInput): Promise<{ started: boolean }>;
  /** Stops a running execution; does nothing if it is not running. */
  stop(name: string, cause: string): Promise<void>;
  /** Status of an execution started under `name`, or null if none is known. */
  status(name: string): Promise<ExecutionStatus | null>;
}
