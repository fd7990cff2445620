/**
 * `.waitForTaskToken` as Step Functions keeps it, for the local engine: a callback task waits
 * until its token is completed (SendTaskSuccess: the output is the task's result), failed
 * (SendTaskFailure: its Catch sees the error and cause), or until HeartbeatSeconds pass without a
 * heartbeat (States.HeartbeatTimeout) or TimeoutSeconds pass at all (States.Timeout).
 */
import { randomBytes } from "node:crypto";
import type { JsonValue } from "../../domain/run";
import type { TokenAnswer } from "../../ports/engine";

/** A failure with the name Retry and Catch match on, as Step Functions reports it. */
export class TaskFailure extends Error {
  constructor(error: string, cause: string) {
    super(cause);
    this.name = error;
  }
}

export const HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout";
export const TIMEOUT = "States.Timeout";
/**
 * What a wait is ended with when its execution stops running here (aborted, handed over): no
 * Retry names it; the interpreter settles the task and, the execution being aborted, goes no
 * further — and clears its own TimeoutSeconds timer, which would keep the process alive.
 */
export const ABORTED = "LocalEngine.Aborted";

export interface CallbackLimits {
  /** Milliseconds without a heartbeat after which the task fails; null for none. */
  heartbeatMs: number | null;
  /** Epoch ms at which the task fails however many heartbeats came; null for none. */
  timeoutAtMs: number | null;
}

interface Pending {
  execution: string;
  resolve(output: JsonValue): void;
  reject(error: Error): void;
  heartbeatMs: number | null;
  heartbeatTimer: NodeJS.Timeout | null;
  timeoutTimer: NodeJS.Timeout | null;
}

export class CallbackTasks {
  readonly #pending = new Map<string, Pending>();

  /** A new token for a task of `execution` (opaque to its holder, unguessable). */
  newToken(execution: string, state: string): string {
    return `${execution}.${state.replace(/[^A-Za-z0-9_-]/g, "_")}.${randomBytes(24).toString("base64url")}`;
  }

  /**
   * Starts waiting on `token`. Open it before the token is handed out: a holder may complete it
   * before the call that hands it out has even returned.
   */
  open(token: string, execution: string, limits: CallbackLimits): Promise<JsonValue> {
    return new Promise<JsonValue>((resolve, reject) => {
      const pending: Pending = {
        execution,
        resolve,
        reject,
        heartbeatMs: limits.heartbeatMs,
        heartbeatTimer: null,
        timeoutTimer: null,
      };
      this.#pending.set(token, pending);
      if (limits.timeoutAtMs !== null) {
        const left = Math.max(0, limits.timeoutAtMs - Date.now());
        pending.timeoutTimer = setTimeout(
          () =>
            this.#settle(token, new TaskFailure(TIMEOUT, "the task ran past its TimeoutSeconds")),
          left,
        );
      }
      this.#armHeartbeat(token, pending);
    });
  }

  succeed(token: string, output: JsonValue): TokenAnswer {
    return this.#settle(token, output);
  }

  fail(token: string, error: string, cause: string): TokenAnswer {
    return this.#settle(token, new TaskFailure(error, cause));
  }

  heartbeat(token: string): TokenAnswer {
    const pending = this.#pending.get(token);
    if (!pending) return "gone";
    this.#armHeartbeat(token, pending);
    return "accepted";
  }

  /** Forgets a token whose task failed before it waited (its handler threw). */
  drop(token: string): void {
    const pending = this.#pending.get(token);
    if (pending) this.#clear(token, pending);
  }

  /** Ends every wait of an execution that stopped running here (aborted, handed over). */
  dropExecution(execution: string): void {
    for (const [token, pending] of this.#pending) {
      if (pending.execution !== execution) continue;
      this.#clear(token, pending);
      pending.reject(new TaskFailure(ABORTED, "the execution stopped running in this process"));
    }
  }

  /** Tokens still waiting. */
  get size(): number {
    return this.#pending.size;
  }

  #armHeartbeat(token: string, pending: Pending): void {
    if (pending.heartbeatMs === null) return;
    if (pending.heartbeatTimer) clearTimeout(pending.heartbeatTimer);
    pending.heartbeatTimer = setTimeout(
      () =>
        this.#settle(
          token,
          new TaskFailure(
            HEARTBEAT_TIMEOUT,
            "no heartbeat came within the task's HeartbeatSeconds",
          ),
        ),
      pending.heartbeatMs,
    );
  }

  #settle(token: string, outcome: JsonValue | Error): TokenAnswer {
    const pending = this.#pending.get(token);
    if (!pending) return "gone";
    this.#clear(token, pending);
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
    return "accepted";
  }

  #clear(token: string, pending: Pending): void {
    if (pending.heartbeatTimer) clearTimeout(pending.heartbeatTimer);
    if (pending.timeoutTimer) clearTimeout(pending.timeoutTimer);
    this.#pending.delete(token);
  }
}
