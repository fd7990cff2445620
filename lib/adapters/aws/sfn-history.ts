/**
 * Step Functions' execution history (GetExecutionHistory's events, oldest first) told as
 * domain/execution-history.ts tells it: states entered and left, attempts failed, timed out and
 * tried again, callback waits, and the execution's end with its error and cause.
 *
 * Step Functions puts no event in the history for a heartbeat (SendTaskHeartbeat only resets the
 * task's HeartbeatSeconds), so a history from AWS has no HeartbeatReceived: a watcher that
 * stopped shows as a TaskTimedOut with States.HeartbeatTimeout.
 *
 * Attempt events (Task*, LambdaFunction*) carry no state name: they belong to the state entered
 * last (a state is left before the next is entered). LaaS's state machines have no Parallel or Map state, whose branches
 * would interleave their states' events. Activities are not used either: their events are left
 * out, as are the other events with nothing to show (TaskStarted, TaskSucceeded, …).
 */
import type { HistoryEvent, HistoryEventType } from "@aws-sdk/client-sfn";
import type { ExecutionEvent, ExecutionEventType } from "../../domain/execution-history";

/** What an event keeps of an error and its cause (a Lambda's cause holds its stack trace). */
export const MAX_HISTORY_ERROR_CHARS = 256;
export const MAX_HISTORY_CAUSE_CHARS = 2_000;

interface Failure {
  error?: string | undefined;
  cause?: string | undefined;
}

const ENTERED: ReadonlySet<HistoryEventType> = new Set<HistoryEventType>([
  "TaskStateEntered",
  "ChoiceStateEntered",
  "WaitStateEntered",
  "PassStateEntered",
  "SucceedStateEntered",
  "FailStateEntered",
  "ParallelStateEntered",
  "MapStateEntered",
]);

/** A Fail state is never left: the execution fails there. */
const EXITED: ReadonlySet<HistoryEventType> = new Set<HistoryEventType>([
  "TaskStateExited",
  "ChoiceStateExited",
  "WaitStateExited",
  "PassStateExited",
  "SucceedStateExited",
  "ParallelStateExited",
  "MapStateExited",
]);

/** An attempt begins: a service integration's task, or a Lambda function named by its ARN. */
const SCHEDULED: ReadonlySet<HistoryEventType> = new Set<HistoryEventType>([
  "TaskScheduled",
  "LambdaFunctionScheduled",
]);

/** An attempt ended without a result, and where its error and cause are. */
const ATTEMPT_ENDED: Partial<
  Record<HistoryEventType, [ExecutionEventType, (event: HistoryEvent) => Failure | undefined]>
> = {
  TaskFailed: ["TaskFailed", (event) => event.taskFailedEventDetails],
  TaskStartFailed: ["TaskFailed", (event) => event.taskStartFailedEventDetails],
  TaskSubmitFailed: ["TaskFailed", (event) => event.taskSubmitFailedEventDetails],
  LambdaFunctionFailed: ["TaskFailed", (event) => event.lambdaFunctionFailedEventDetails],
  LambdaFunctionStartFailed: ["TaskFailed", (event) => event.lambdaFunctionStartFailedEventDetails],
  LambdaFunctionScheduleFailed: [
    "TaskFailed",
    (event) => event.lambdaFunctionScheduleFailedEventDetails,
  ],
  TaskTimedOut: ["TaskTimedOut", (event) => event.taskTimedOutEventDetails],
  LambdaFunctionTimedOut: ["TaskTimedOut", (event) => event.lambdaFunctionTimedOutEventDetails],
};

/**
 * The execution's own events, and where their error and cause are. A redrive takes a failed,
 * aborted or timed-out execution on from where it stopped: it goes on, as a resumed one does.
 */
const EXECUTION: Partial<
  Record<HistoryEventType, [ExecutionEventType, (event: HistoryEvent) => Failure | undefined]>
> = {
  ExecutionStarted: ["ExecutionStarted", () => undefined],
  ExecutionRedriven: ["ExecutionResumed", () => undefined],
  ExecutionSucceeded: ["ExecutionSucceeded", () => undefined],
  ExecutionFailed: ["ExecutionFailed", (event) => event.executionFailedEventDetails],
  ExecutionAborted: ["ExecutionAborted", (event) => event.executionAbortedEventDetails],
  ExecutionTimedOut: ["ExecutionTimedOut", (event) => event.executionTimedOutEventDetails],
};

/** The state entered last, whose attempts the next events are, and whether one of them failed. */
interface CurrentState {
  name: string;
  failed: boolean;
}

export function executionEventsOf(history: readonly HistoryEvent[]): ExecutionEvent[] {
  const events: ExecutionEvent[] = [];
  let current: CurrentState | null = null;
  for (const event of history) {
    const type = required(event.type, "type", event);
    const at = () => required(event.timestamp, "timestamp", event).toISOString();
    const push = (kind: ExecutionEventType, state: string | null, failure?: Failure) =>
      events.push({
        type: kind,
        at: at(),
        state,
        error: cut(failure?.error, MAX_HISTORY_ERROR_CHARS),
        cause: cut(failure?.cause, MAX_HISTORY_CAUSE_CHARS),
      });

    const execution = EXECUTION[type];
    if (execution) {
      push(execution[0], null, execution[1](event));
      continue;
    }
    if (ENTERED.has(type)) {
      const name = required(event.stateEnteredEventDetails?.name, "state name", event);
      current = { name, failed: false };
      push("StateEntered", name);
      continue;
    }
    if (EXITED.has(type)) {
      push("StateExited", required(event.stateExitedEventDetails?.name, "state name", event));
      continue;
    }
    // An attempt's event before any state entered (none in a real history) belongs to no state.
    if (current === null) continue;
    const ended = ATTEMPT_ENDED[type];
    if (ended) {
      current.failed = true;
      push(ended[0], current.name, ended[1](event));
    } else if (SCHEDULED.has(type) && current.failed) {
      // Only a failed attempt is tried again: the state's first attempt follows no failure.
      push("TaskRetried", current.name);
    } else if (
      type === "TaskSubmitted" &&
      event.taskSubmittedEventDetails?.resource?.endsWith(".waitForTaskToken")
    ) {
      // Submitted: the function that took the token returned; the task now waits for its answer.
      push("CallbackWaiting", current.name);
    }
  }
  return events;
}

function cut(text: string | undefined, max: number): string | null {
  return text === undefined ? null : text.slice(0, max);
}

/** A field the API reference marks required; an event without it is not Step Functions'. */
function required<T>(value: T | undefined, what: string, event: HistoryEvent): T {
  if (value === undefined) {
    throw new Error(
      `execution history event ${event.id} (${event.type ?? "no type"}) has no ${what}`,
    );
  }
  return value;
}
