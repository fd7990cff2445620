import type { Phase } from "../domain/booking";
import type { ExecutionEvent } from "../domain/execution-history";
import type { JsonObject } from "../domain/run";

/** What a workflow execution is given: enough to find everything else in the store. */
export interface PhaseInput {
  bookingId: string;
  hostName: string;
  phase: Phase;
  generation: number;
}

export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED";

/**
 * What a task token's owner answered: `accepted`, or `gone` when the task no longer waits on
 * that token (it completed, timed out, or its execution ended) — Step Functions' TaskDoesNotExist,
 * TaskTimedOut and InvalidToken. A `gone` token is simply forgotten.
 */
export type TokenAnswer = "accepted" | "gone";

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
  /**
   * Completes the callback task (`.waitForTaskToken`) holding `token` with `output` as its
   * result. Repeatable: a token already completed answers `gone`.
   */
  sendTaskSuccess(token: string, output: JsonObject): Promise<TokenAnswer>;
  /** Fails the callback task: its Catch sees `{Error: error, Cause: cause}`. */
  sendTaskFailure(token: string, error: string, cause: string): Promise<TokenAnswer>;
  /** Tells the callback task its wait is still being watched (resets its HeartbeatSeconds). */
  sendTaskHeartbeat(token: string): Promise<TokenAnswer>;
  /**
   * What the execution started under `name` went through, oldest first (see
   * domain/execution-history.ts: states, attempts, waits, heartbeats, the failure and its cause,
   * never inputs or outputs); null when no execution of that name is known.
   */
  history(name: string): Promise<ExecutionEvent[] | null>;
}
