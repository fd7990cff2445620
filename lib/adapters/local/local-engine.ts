/**
 * The embedded default's workflow engine: the very ASL files AWS runs, interpreted in-process by
 * aws-local-stepfunctions, each Task bound to the same handler the Lambda function runs, with the
 * parts of Step Functions the library lacks:
 *
 * - Durable executions. Each execution has a record in the journal (adapters/local/journal.ts):
 *   its owner, its status, and the top-level state it is in with that state's input, written
 *   before the state's step runs. A listener started after `kill -9` resumes each execution at
 *   the state it was in — a step checkpoints its own work on the booking, so running it again
 *   returns what it did (lib/lifecycle/checkpoints.ts).
 * - Callback tasks (`.waitForTaskToken`, callbacks.ts): token, success, failure with error and
 *   cause, HeartbeatSeconds and TimeoutSeconds.
 * - One owner per execution. Executions run in their owner's process only; an engine whose owner
 *   is another live process (a listener) hands what it starts to that owner through the journal,
 *   and asks it to stop what it stops.
 */
import "../../polyfills";
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
  type StateMachineDefinition,
} from "aws-local-stepfunctions";
import type { Phase } from "../../domain/booking";
import type { ExecutionEvent, ExecutionEventType } from "../../domain/execution-history";
import type { JsonObject as JsonRecord, JsonValue } from "../../domain/run";
import { errorMessage } from "../../errors";
import type { Logger } from "../../log";
import type { ExecutionStatus, PhaseInput, TokenAnswer, WorkflowEngine } from "../../ports/engine";
import { settledWithin } from "../../time";
import {
  bindTasks,
  definitionPath,
  type JsonObject,
  loadDefinition,
  type TaskBinding,
} from "../../workflow/definitions";
import { CallbackTasks, HEARTBEAT_TIMEOUT, TIMEOUT } from "./callbacks";
import { type ExecutionHistoryLog, MemoryHistory } from "./history-files";
import type { ExecutionJournal, ExecutionPosition, ExecutionRecord } from "./journal";
import { isRunning, type ProcessId, sameProcess, thisProcess } from "./process-identity";

/** A step handler takes the event its Task passes (JSON from the workflow, read by the step). */
export type StepHandler = (input: never) => Promise<unknown>;

/** Where `$$.Task.Token` points in the context object; each callback task swaps in its token. */
const TOKEN_PLACEHOLDER = "__laas_local_task_token__";
/** Added to a top-level Task's Parameters so its step sees the state's own input as well. */
const STATE_INPUT = "__laas_state_input__";

export interface LocalEngineOptions {
  /** Lambda function name (as in serverless.yml) → handler. */
  handlers: Record<string, StepHandler>;
  journal: ExecutionJournal;
  /** Where each execution's history is recorded (default: in memory, this process only). */
  history?: ExecutionHistoryLog;
  logger: Logger;
  /** Who runs the executions: this process, or the live owner (a listener) to hand them to. */
  owner?: ProcessId;
  /** Where statemachines/ is; defaults to the project root. */
  root?: string;
  /** Wait-state durations in ms by state name (tests compress time with this). */
  waitOverridesMs?: Record<string, number>;
  /** Pause before each retry in ms by state name (tests compress a Retry's backoff with this). */
  retryOverridesMs?: Record<string, number | number[]>;
  /** Callback tasks' HeartbeatSeconds, in ms by state name (tests compress time with this). */
  heartbeatOverridesMs?: Record<string, number>;
  /** Callback tasks' TimeoutSeconds, in ms by state name. */
  timeoutOverridesMs?: Record<string, number>;
}

interface Machine {
  definition: JsonObject;
  bindings: Map<string, TaskBinding>;
  topLevel: Set<string>;
  byStart: Map<string, StateMachine>;
}

interface Run {
  name: string;
  phase: Phase;
  abort(): void;
  /** Why it is being stopped here (engine.stop), or null. */
  stopCause: string | null;
  /** This process lets go of it (drain): its record stays RUNNING for the next owner. */
  handingOver: boolean;
  /** Where the run resumed, until that state has been entered again. */
  resumedAt: ExecutionPosition | null;
  transitions: number;
  /**
   * The run's record as this process last wrote (or read) it. The run's own updates are written
   * on its version without reading the record first; one someone else changed meanwhile (a stop
   * asked for) loses that write and is read and decided again.
   */
  held: ExecutionRecord;
  done: Promise<void>;
  /** Step handlers still at work (a handed-over run's steps may outlive it for a moment). */
  inFlight: Set<Promise<unknown>>;
  /** Each state's latest attempt: a retry waits for the attempt before it to end. */
  attempts: Map<string, Promise<unknown>>;
}

export class LocalEngine implements WorkflowEngine {
  readonly #machines = new Map<Phase, Machine>();
  readonly #runs = new Map<string, Run>();
  /** Runs that stopped here and whose record is being written: not to be adopted meanwhile. */
  readonly #finishing = new Set<string>();
  readonly #callbacks = new CallbackTasks();
  readonly #journal: ExecutionJournal;
  readonly #history: ExecutionHistoryLog;
  /** Callback tokens waiting here → their execution and state, for the heartbeat's event. */
  readonly #tokenStates = new Map<string, { execution: string; state: string }>();
  readonly #logger: Logger;
  readonly #owner: ProcessId;
  readonly #handlers: Record<string, StepHandler>;
  readonly #options: LocalEngineOptions;

  constructor(options: LocalEngineOptions) {
    this.#options = options;
    this.#journal = options.journal;
    this.#history = options.history ?? new MemoryHistory();
    this.#logger = options.logger;
    this.#owner = options.owner ?? thisProcess();
    this.#handlers = options.handlers;
    for (const phase of ["provision", "release"] as const) {
      const { definition, bindings } = bindTasks(
        loadDefinition(definitionPath(phase, options.root)),
      );
      for (const { stateName, functionName } of bindings) {
        if (!options.handlers[functionName]) {
          throw new Error(
            `${phase}: Task ${stateName} calls ${functionName}, which has no handler`,
          );
        }
      }
      const topLevel = new Set(Object.keys(statesOf(definition)));
      passStateInput(definition, topLevel);
      const machine: Machine = {
        definition,
        bindings: new Map(bindings.map((b) => [b.stateName, b])),
        topLevel,
        byStart: new Map(),
      };
      // Validated once here, so a broken file fails at start rather than at the first booking.
      machineStartingAt(machine, String(definition.StartAt));
      this.#machines.set(phase, machine);
    }
  }

  /** Whether executions started here run in this process (else they go to the owner). */
  get runsHere(): boolean {
    return sameProcess(this.#owner, thisProcess());
  }

  async start(phase: Phase, name: string, input: PhaseInput): Promise<{ started: boolean }> {
    const now = new Date().toISOString();
    const record: ExecutionRecord = {
      name,
      phase,
      input,
      status: "RUNNING",
      owner: this.#owner,
      startedAt: now,
      stoppedAt: null,
      error: null,
      cause: null,
      position: null,
      stopRequested: null,
      transitions: 0,
      updatedAt: now,
      version: 0,
    };
    // Step Functions refuses a second execution of a name (ExecutionAlreadyExists): so does this.
    if (!(await this.#journal.create(record))) return { started: false };
    if (this.runsHere) {
      this.#launch(record);
      this.#logger.info(
        { execution: name, bookingId: input.bookingId, phase },
        "execution started",
      );
    } else {
      this.#logger.info(
        { execution: name, bookingId: input.bookingId, owner: this.#owner.pid },
        "execution handed to the listener that owns this store",
      );
    }
    return { started: true };
  }

  async stop(name: string, cause: string): Promise<void> {
    const record = await this.#journal.get(name);
    if (record?.status !== "RUNNING") return;
    const run = this.#runs.get(name);
    if (run) {
      this.#logger.info({ execution: name, cause }, "stopping execution");
      run.stopCause = cause;
      run.abort();
      await run.done;
      return;
    }
    const owner = record.owner;
    if (owner && !sameProcess(owner, thisProcess()) && isRunning(owner)) {
      // Its owner stops it at its next look at the journal (tick).
      await this.#journal.update(
        name,
        (r) =>
          r.status === "RUNNING" && r.stopRequested === null
            ? { ...r, stopRequested: cause }
            : null,
        { expected: record },
      );
      return;
    }
    await this.#finish(name, "ABORTED", null, cause);
  }

  async status(name: string): Promise<ExecutionStatus | null> {
    return (await this.#journal.get(name))?.status ?? null;
  }

  async sendTaskSuccess(token: string, output: JsonRecord): Promise<TokenAnswer> {
    return this.#callbacks.succeed(token, output);
  }

  async sendTaskFailure(token: string, error: string, cause: string): Promise<TokenAnswer> {
    return this.#callbacks.fail(token, error, cause);
  }

  async sendTaskHeartbeat(token: string): Promise<TokenAnswer> {
    const answer = this.#callbacks.heartbeat(token);
    const origin = this.#tokenStates.get(token);
    if (answer === "accepted" && origin) {
      this.#record(origin.execution, "HeartbeatReceived", origin.state);
    }
    return answer;
  }

  async history(name: string): Promise<ExecutionEvent[] | null> {
    return this.#history.read(name);
  }

  /** Drops an ended execution's history (the sweep, with its journal record). */
  forgetHistory(name: string): Promise<void> {
    return this.#history.remove(name);
  }

  /** Appends to the execution's history; a history that cannot be written never stops a run. */
  #record(
    execution: string,
    type: ExecutionEventType,
    state: string | null = null,
    error: string | null = null,
    cause: string | null = null,
  ): void {
    try {
      this.#history.append(execution, { type, at: new Date().toISOString(), state, error, cause });
    } catch (failure) {
      this.#logger.warn({ execution, err: errorMessage(failure) }, "could not record history");
    }
  }

  /** The live process running (or about to adopt) the execution, or null when none does. */
  async runner(name: string): Promise<ProcessId | null> {
    const record = await this.#journal.get(name);
    if (record?.status !== "RUNNING" || record.owner === null) return null;
    return isRunning(record.owner) ? record.owner : null;
  }

  /** Names of the executions running in this process. */
  running(): string[] {
    return [...this.#runs.keys()];
  }

  /**
   * The owner's look at the journal: stops what another process asked to stop and, with
   * `adopt`, takes over the executions handed to this process or left by an owner that is gone
   * (killed, or drained and exited), resuming each at the state it was in.
   */
  async tick(options: { adopt: boolean }): Promise<{ adopted: string[]; stopped: string[] }> {
    const adopted: string[] = [];
    const stopped: string[] = [];
    if (!this.runsHere) return { adopted, stopped };
    const me = thisProcess();
    for (const record of await this.#journal.list()) {
      if (record.status !== "RUNNING") continue;
      if (this.#finishing.has(record.name)) continue;
      const run = this.#runs.get(record.name);
      if (run) {
        if (record.stopRequested !== null) {
          await this.stop(record.name, record.stopRequested);
          stopped.push(record.name);
        }
        continue;
      }
      if (!options.adopt) continue;
      const owner = record.owner;
      const orphan = owner === null || sameProcess(owner, me) || !isRunning(owner);
      if (!orphan) continue;
      const { changed, item } = await this.#journal.update(
        record.name,
        (r) =>
          r.status === "RUNNING" && r.version === record.version ? { ...r, owner: me } : null,
        { expected: record },
      );
      if (!changed) continue;
      if (item.stopRequested !== null) {
        await this.#finish(item.name, "ABORTED", null, item.stopRequested);
        stopped.push(item.name);
        continue;
      }
      try {
        this.#launch(item);
      } catch (error) {
        // A position the machine cannot resume from (a state renamed by an upgrade): it fails,
        // which poll records on the booking, rather than being adopted again and again.
        await this.#finish(item.name, "FAILED", "States.Runtime", errorMessage(error));
        continue;
      }
      adopted.push(item.name);
      const fields = { execution: item.name, bookingId: item.input.bookingId };
      if (item.position === null && owner !== null && sameProcess(owner, me)) {
        this.#logger.info(fields, "execution started, handed over by another process");
      } else {
        this.#logger.info(
          { ...fields, at: item.position?.state ?? "start", previousOwner: owner?.pid ?? null },
          "execution resumed",
        );
      }
    }
    return { adopted, stopped };
  }

  /**
   * Waits up to `timeoutMs` for the executions running here to end, then hands the rest over:
   * they stop running in this process and keep their records (state and input), which the next
   * owner adopts and resumes where they were. A step still at work is given `settleMs` to end
   * (its record then saves the next owner from running it again); one that takes longer is run
   * again by the next owner, as after a crash.
   */
  async drain(
    timeoutMs: number,
    settleMs = 5_000,
  ): Promise<{ finished: string[]; handedOver: string[] }> {
    const running = [...this.#runs.values()];
    const allDone = Promise.all(running.map((r) => r.done));
    if (Number.isFinite(timeoutMs)) await settledWithin(allDone, timeoutMs);
    else await allDone;
    const handedOver = running.filter((r) => this.#runs.has(r.name));
    for (const run of handedOver) {
      run.handingOver = true;
      run.abort();
    }
    await Promise.all(handedOver.map((r) => r.done));
    const steps = handedOver.flatMap((r) => [...r.inFlight]);
    if (steps.length > 0) await settledWithin(Promise.allSettled(steps), settleMs);
    return {
      finished: running.filter((r) => !handedOver.includes(r)).map((r) => r.name),
      handedOver: handedOver.map((r) => r.name),
    };
  }

  #launch(record: ExecutionRecord): void {
    const machine = this.#machine(record.phase);
    const position = record.position;
    const stateMachine = machineStartingAt(
      machine,
      position?.state ?? String(machine.definition.StartAt),
    );
    const log = this.#logger.child({ execution: record.name, bookingId: record.input.bookingId });
    this.#record(record.name, position === null ? "ExecutionStarted" : "ExecutionResumed");
    const run: Run = {
      name: record.name,
      phase: record.phase,
      abort: () => undefined,
      stopCause: null,
      handingOver: false,
      resumedAt: position,
      transitions: record.transitions,
      held: record,
      done: Promise.resolve(),
      inFlight: new Set(),
      attempts: new Map(),
    };
    const execution = stateMachine.run((position?.input ?? record.input) as never, {
      overrides: {
        taskResourceLocalHandlers: this.#taskHandlers(machine, run, log) as never,
        waitTimeOverrides: this.#options.waitOverridesMs ?? {},
        retryIntervalOverrides: this.#options.retryOverridesMs ?? {},
      },
      context: {
        Execution: { Name: record.name },
        StateMachine: { Name: record.phase },
        Task: { Token: TOKEN_PLACEHOLDER },
      },
    });
    run.abort = execution.abort;
    this.#runs.set(record.name, run);
    void this.#trace(execution.eventLogs as AsyncGenerator<EventLike>, run, log);
    run.done = execution.result.then(
      async () => this.#ended(run, "SUCCEEDED", null, null, log),
      async (error: unknown) => {
        if (error instanceof ExecutionAbortedError) {
          if (run.handingOver) await this.#letGo(run, log);
          else await this.#ended(run, "ABORTED", null, run.stopCause, log);
        } else if (error instanceof ExecutionTimeoutError) {
          await this.#ended(run, "TIMED_OUT", "States.Timeout", errorMessage(error), log);
        } else {
          const cause = error instanceof ExecutionError ? error.cause : error;
          await this.#ended(
            run,
            "FAILED",
            cause instanceof Error ? cause.name : "Error",
            errorMessage(cause),
            log,
          );
        }
      },
    );
  }

  #taskHandlers(machine: Machine, run: Run, log: Logger): Record<string, StepHandler> {
    const handlers: Record<string, StepHandler> = {};
    for (const [stateName, binding] of machine.bindings) {
      const handler = this.#handlers[binding.functionName];
      if (!handler) continue;
      const topLevel = machine.topLevel.has(stateName);
      handlers[stateName] = (processed) =>
        tracked(run, this.#runStep(run, binding, topLevel, processed, handler, log));
    }
    return handlers;
  }

  /** One attempt of a Task: its place in the journal, then its step (or its wait). */
  async #runStep(
    run: Run,
    binding: TaskBinding,
    topLevel: boolean,
    processed: unknown,
    handler: StepHandler,
    log: Logger,
  ): Promise<unknown> {
    const { stateName } = binding;
    const { stateInput, parameters } = splitStateInput(processed);
    // On AWS an attempt that ran past TimeoutSeconds is ended with its Lambda (same
    // timeout) before the retry runs; here nothing can end it, so the retry waits for it, up
    // to the same time, rather than run beside it.
    const previous = run.attempts.get(stateName);
    if (previous) await settledWithin(previous, (binding.timeoutSeconds ?? 60) * 1000);
    const enteredAt = topLevel
      ? await this.#enter(run, stateName, stateInput ?? parameters)
      : Date.now();
    // Stopped or handed over meanwhile: the step is not this process's to run any more.
    if (!this.#runs.has(run.name) || run.handingOver) {
      throw new Error(`execution ${run.name} no longer runs in this process`);
    }
    try {
      if (binding.callback) {
        return await this.#waitForToken(run, binding, parameters, enteredAt, handler);
      }
      const attempt = invoke(handler, parameters);
      run.attempts.set(stateName, attempt);
      return await attempt;
    } catch (error) {
      // What Lambda's own log shows in the cloud: which step failed, and why (error messages
      // never carry secrets).
      log.warn(
        { state: stateName, error: errorName(error), err: errorMessage(error) },
        "step failed",
      );
      throw error;
    }
  }

  /**
   * Records that the run is in `state` with `input` before its step runs, and answers when the
   * state was entered (a resumed callback task keeps its original TimeoutSeconds).
   */
  async #enter(run: Run, state: string, input: unknown): Promise<number> {
    const resumed = run.resumedAt?.state === state ? run.resumedAt : null;
    run.resumedAt = null;
    const enteredAt = resumed ? Date.parse(resumed.enteredAt) : Date.now();
    const position: ExecutionPosition = {
      state,
      input: input as JsonValue,
      enteredAt: new Date(enteredAt).toISOString(),
    };
    const me = thisProcess();
    const { changed, item } = await this.#journal.update(
      run.name,
      (r) =>
        r.status === "RUNNING" && r.owner !== null && sameProcess(r.owner, me)
          ? { ...r, position, transitions: run.transitions }
          : null,
      { expected: run.held },
    );
    run.held = item;
    if (!changed) {
      // Another process took the execution over (or it was stopped): it is not ours to run.
      run.handingOver = true;
      run.abort();
      throw new Error(`execution ${run.name} is no longer owned by this process`);
    }
    return enteredAt;
  }

  async #waitForToken(
    run: Run,
    binding: TaskBinding,
    parameters: unknown,
    enteredAt: number,
    handler: StepHandler,
  ): Promise<unknown> {
    const { stateName } = binding;
    const heartbeatMs =
      this.#options.heartbeatOverridesMs?.[stateName] ??
      secondsToMs(binding.callback?.heartbeatSeconds ?? null);
    const timeoutMs =
      this.#options.timeoutOverridesMs?.[stateName] ??
      secondsToMs(binding.callback?.timeoutSeconds ?? null);
    const token = this.#callbacks.newToken(run.name, stateName);
    this.#tokenStates.set(token, { execution: run.name, state: stateName });
    this.#record(run.name, "CallbackWaiting", stateName);
    const waiting = this.#callbacks.open(token, run.name, {
      heartbeatMs,
      timeoutAtMs: timeoutMs === null ? null : enteredAt + timeoutMs,
    });
    // The wait may fail (a timeout) before the handler has returned; it is awaited below.
    waiting.catch(() => undefined);
    const payload = isObject(parameters) ? parameters.Payload : undefined;
    try {
      await invoke(handler, withToken(payload, token));
      return await waiting;
    } catch (error) {
      this.#callbacks.drop(token);
      throw error;
    } finally {
      this.#tokenStates.delete(token);
    }
  }

  async #ended(
    run: Run,
    status: ExecutionStatus,
    error: string | null,
    cause: string | null,
    log: Logger,
  ): Promise<void> {
    this.#finishing.add(run.name);
    this.#runs.delete(run.name);
    this.#callbacks.dropExecution(run.name);
    await this.#finish(run.name, status, error, cause, run.transitions, run.held)
      .catch((failure: unknown) =>
        log.error({ err: errorMessage(failure) }, "could not record the end of the execution"),
      )
      .finally(() => this.#finishing.delete(run.name));
    log.info({ status, error: error ?? undefined, cause: cause ?? undefined }, "execution ended");
  }

  /** Hands the run over: its record keeps state and input, with no owner, for the next one. */
  async #letGo(run: Run, log: Logger): Promise<void> {
    this.#finishing.add(run.name);
    this.#runs.delete(run.name);
    this.#callbacks.dropExecution(run.name);
    const me = thisProcess();
    await this.#journal
      .update(
        run.name,
        (r) =>
          r.status === "RUNNING" && r.owner !== null && sameProcess(r.owner, me)
            ? { ...r, owner: null, transitions: run.transitions }
            : null,
        { expected: run.held },
      )
      .catch((failure: unknown) =>
        log.error({ err: errorMessage(failure) }, "could not hand the execution over"),
      )
      .finally(() => this.#finishing.delete(run.name));
    log.info("execution handed over: the next listener resumes it");
  }

  async #finish(
    name: string,
    status: ExecutionStatus,
    error: string | null,
    cause: string | null,
    transitions?: number,
    held?: ExecutionRecord,
  ): Promise<void> {
    const { changed } = await this.#journal.update(
      name,
      (r) =>
        r.status === "RUNNING"
          ? {
              ...r,
              status,
              error,
              cause,
              stoppedAt: new Date().toISOString(),
              transitions: transitions ?? r.transitions,
            }
          : null,
      held === undefined ? {} : { expected: held },
    );
    if (changed) this.#record(name, ENDED_EVENTS[status], null, error, cause);
  }

  async #trace(events: AsyncGenerator<EventLike>, run: Run, log: Logger): Promise<void> {
    try {
      for await (const event of events) {
        if (!event.state) continue;
        const state = event.state.name;
        if (event.type === "StateEntered") {
          run.transitions += 1;
          this.#record(run.name, "StateEntered", state);
          log.debug({ state }, "state entered");
        } else if (event.type === "StateExited") {
          this.#record(run.name, "StateExited", state);
        } else if (event.type === "StateFailed") {
          const error = event.Error ?? "Error";
          const timedOut = error === TIMEOUT || error === HEARTBEAT_TIMEOUT;
          const cause = causeText(event.Cause);
          this.#record(run.name, timedOut ? "TaskTimedOut" : "TaskFailed", state, error, cause);
        } else if (event.type === "StateRetried") {
          run.transitions += 1;
          this.#record(run.name, "TaskRetried", state);
          log.warn({ state }, "state retried");
        } else if (event.type === "StateCaught") {
          this.#record(run.name, "ErrorCaught", state);
          log.warn({ state }, "error caught");
        }
      }
    } catch {
      // The event stream ends with the execution; an aborted one may end it abruptly.
    }
  }

  #machine(phase: Phase): Machine {
    const machine = this.#machines.get(phase);
    if (!machine) throw new Error(`no state machine for phase ${phase}`);
    return machine;
  }
}

interface EventLike {
  type: string;
  state?: { name: string };
  Error?: string;
  Cause?: unknown;
}

const ENDED_EVENTS: Record<ExecutionStatus, ExecutionEventType> = {
  RUNNING: "ExecutionStarted",
  SUCCEEDED: "ExecutionSucceeded",
  FAILED: "ExecutionFailed",
  ABORTED: "ExecutionAborted",
  TIMED_OUT: "ExecutionTimedOut",
};

/** A failure's cause as the history keeps it: its message (never a state's data). */
function causeText(cause: unknown): string | null {
  if (cause === undefined || cause === null) return null;
  return typeof cause === "string" ? cause : errorMessage(cause);
}

/**
 * The machine, started at `state`. The definition is validated as written (from its StartAt);
 * started elsewhere, to resume, states before `state` are unreachable, which the validator
 * would call an error, so that copy is not validated again.
 */
function machineStartingAt(machine: Machine, state: string): StateMachine {
  let found = machine.byStart.get(state);
  if (!found) {
    if (!(state in statesOf(machine.definition))) {
      throw new Error(`the state machine has no state ${state} to resume at`);
    }
    const asWritten = state === machine.definition.StartAt;
    found = new StateMachine(
      { ...machine.definition, StartAt: state } as unknown as StateMachineDefinition,
      {
        validationOptions: asWritten ? { checkArn: true, checkPaths: true } : { noValidate: true },
      },
    );
    machine.byStart.set(state, found);
  }
  return found;
}

/**
 * Makes each top-level Task with Parameters also pass its raw state input, which a resumed
 * execution starts from (the step itself is given the Parameters as before).
 */
function passStateInput(definition: JsonObject, topLevel: Set<string>): void {
  const states = statesOf(definition);
  for (const name of topLevel) {
    const state = states[name];
    if (state?.Type === "Task" && isObject(state.Parameters)) {
      state.Parameters = { ...state.Parameters, [`${STATE_INPUT}.$`]: "$" };
    }
  }
}

function splitStateInput(processed: unknown): { stateInput: unknown; parameters: unknown } {
  if (!isObject(processed) || !(STATE_INPUT in processed)) {
    return { stateInput: undefined, parameters: processed };
  }
  const { [STATE_INPUT]: stateInput, ...parameters } = processed;
  return { stateInput, parameters };
}

/** The payload with the placeholder `$$.Task.Token` resolved to replaced by the task's token. */
function withToken(value: unknown, token: string): unknown {
  if (value === TOKEN_PLACEHOLDER) return token;
  if (Array.isArray(value)) return value.map((item) => withToken(item, token));
  if (isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withToken(v, token)]));
  }
  return value;
}

function statesOf(definition: JsonObject): Record<string, JsonObject> {
  const states = definition.States;
  return isObject(states) ? (states as Record<string, JsonObject>) : {};
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Keeps `step` in the run's in-flight set until it settles. */
function tracked<T>(run: Run, step: Promise<T>): Promise<T> {
  run.inFlight.add(step);
  const forget = () => run.inFlight.delete(step);
  step.then(forget, forget);
  return step;
}

/** The workflow's JSON goes to the step as its event; the step reads (and checks) what it needs. */
function invoke(handler: StepHandler, input: unknown): Promise<unknown> {
  return (handler as (event: unknown) => Promise<unknown>)(input);
}

function secondsToMs(seconds: number | null): number | null {
  return seconds === null ? null : seconds * 1000;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
