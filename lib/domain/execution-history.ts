/**
 * An execution's history, as either engine tells it: Step Functions from GetExecutionHistory, the
 * local engine from the events it records as it runs (adapters/local/history-files.ts). Only
 * what happened and when — never a state's input or output, which may hold what a step was given
 * — so a history can be shown anywhere. Error causes are error messages, which carry no secrets.
 */

export const EXECUTION_EVENT_TYPES = [
  "ExecutionStarted",
  /** The execution went on in another process (local engine: adopted after a restart). */
  "ExecutionResumed",
  "ExecutionSucceeded",
  "ExecutionFailed",
  "ExecutionAborted",
  "ExecutionTimedOut",
  "StateEntered",
  "StateExited",
  /** A Task's attempt failed (with error and cause); a Retry or Catch may follow. */
  "TaskFailed",
  /** The state is tried again after a failed attempt, by its Retry. */
  "TaskRetried",
  /** A failure was caught by the state's Catch and the execution went on elsewhere. */
  "ErrorCaught",
  /** A callback task (.waitForTaskToken) handed out its token and waits. */
  "CallbackWaiting",
  "HeartbeatReceived",
  /** A callback task got no heartbeat or no answer in time. */
  "TaskTimedOut",
] as const;
export type ExecutionEventType = (typeof EXECUTION_EVENT_TYPES)[number];

export interface ExecutionEvent {
  type: ExecutionEventType;
  /** ISO-8601 UTC. */
  at: string;
  /** The state the event belongs to; null for the execution's own events. */
  state: string | null;
  error: string | null;
  cause: string | null;
}

export type StepOutcome = "running" | "succeeded" | "failed" | "caught" | "aborted";

/** One state's visit, as a timeline row. */
export interface TimelineStep {
  state: string;
  enteredAt: string;
  exitedAt: string | null;
  /** Attempts made (1 without retries). */
  attempts: number;
  heartbeats: number;
  lastHeartbeatAt: string | null;
  /** When the state started waiting for its callback, if it is a callback task. */
  waitingSince: string | null;
  outcome: StepOutcome;
  error: string | null;
  cause: string | null;
}

export interface Timeline {
  execution: string;
  startedAt: string | null;
  endedAt: string | null;
  status: "RUNNING" | "SUCCEEDED" | "FAILED" | "ABORTED" | "TIMED_OUT";
  /** The execution's own error and cause when it failed. */
  error: string | null;
  cause: string | null;
  steps: TimelineStep[];
  /** Times the execution was resumed by another process. */
  resumes: string[];
}

const ENDINGS: Partial<Record<ExecutionEventType, Timeline["status"]>> = {
  ExecutionSucceeded: "SUCCEEDED",
  ExecutionFailed: "FAILED",
  ExecutionAborted: "ABORTED",
  ExecutionTimedOut: "TIMED_OUT",
};

/**
 * The rows of a timeline: one per visit of a state, in the order entered. A state entered again
 * after it was left (a loop) is a new row; one entered again without being left (a resumed
 * execution re-entering the state it was in) goes on in its row.
 */
export function timelineOf(execution: string, events: readonly ExecutionEvent[]): Timeline {
  const timeline: Timeline = {
    execution,
    startedAt: null,
    endedAt: null,
    status: "RUNNING",
    error: null,
    cause: null,
    steps: [],
    resumes: [],
  };
  const open = new Map<string, TimelineStep>();
  for (const event of events) {
    const ending = ENDINGS[event.type];
    if (ending) {
      timeline.status = ending;
      timeline.endedAt = event.at;
      timeline.error = event.error;
      timeline.cause = event.cause;
      for (const step of open.values()) {
        if (step.outcome === "running")
          step.outcome = ending === "SUCCEEDED" ? "succeeded" : "aborted";
        if (ending === "FAILED" && step.error === null) {
          step.outcome = "failed";
          step.error = event.error;
          step.cause = event.cause;
        }
        step.exitedAt ??= event.at;
      }
      open.clear();
      continue;
    }
    if (event.type === "ExecutionStarted") {
      timeline.startedAt ??= event.at;
      continue;
    }
    if (event.type === "ExecutionResumed") {
      timeline.resumes.push(event.at);
      // A redriven execution (Step Functions) runs again after its end.
      if (timeline.endedAt !== null) {
        timeline.status = "RUNNING";
        timeline.endedAt = null;
        timeline.error = null;
        timeline.cause = null;
      }
      continue;
    }
    if (event.state === null) continue;
    let step = open.get(event.state);
    if (event.type === "StateEntered") {
      if (step) continue;
      step = {
        state: event.state,
        enteredAt: event.at,
        exitedAt: null,
        attempts: 1,
        heartbeats: 0,
        lastHeartbeatAt: null,
        waitingSince: null,
        outcome: "running",
        error: null,
        cause: null,
      };
      open.set(event.state, step);
      timeline.steps.push(step);
      continue;
    }
    if (!step) continue;
    switch (event.type) {
      case "StateExited":
        step.exitedAt = event.at;
        if (step.outcome === "running" || step.outcome === "failed") {
          step.outcome = step.outcome === "failed" ? "caught" : "succeeded";
        }
        open.delete(event.state);
        break;
      case "TaskFailed":
      case "TaskTimedOut":
        step.outcome = "failed";
        step.error = event.error ?? (event.type === "TaskTimedOut" ? "States.Timeout" : null);
        step.cause = event.cause;
        break;
      case "TaskRetried":
        step.attempts += 1;
        step.outcome = "running";
        break;
      case "ErrorCaught":
        step.outcome = "caught";
        step.exitedAt = event.at;
        open.delete(event.state);
        break;
      case "CallbackWaiting":
        step.waitingSince ??= event.at;
        break;
      case "HeartbeatReceived":
        step.heartbeats += 1;
        step.lastHeartbeatAt = event.at;
        break;
      default:
        break;
    }
  }
  return timeline;
}
