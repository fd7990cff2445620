/**
 * The embedded default's workflow engine: the very ASL files AWS runs, interpreted in-process by
 * aws-local-stepfunctions, with each Task bound to the same handler the Lambda function runs.
 *
 * Execution names are unique per engine, as in Step Functions. The registry lives in memory: the
 * embedded store admits one listener per database, so one engine owns its bookings; after a
 * restart, poll starts the phases that were in flight again under their names.
 */
import "../../polyfills";
import {
  ExecutionAbortedError,
  ExecutionTimeoutError,
  StateMachine,
  type StateMachineDefinition,
} from "aws-local-stepfunctions";
import type { Phase } from "../../domain/booking";
import { errorMessage } from "../../errors";
import type { Logger } from "../../log";
import type { ExecutionStatus, PhaseInput, WorkflowEngine } from "../../ports/engine";
import {
  bindTasks,
  definitionPath,
  type JsonObject,
  loadDefinition,
} from "../../workflow/definitions";

export type StepHandler = (input: unknown) => Promise<unknown>;

interface Execution {
  name: string;
  phase: Phase;
  status: ExecutionStatus;
  startedAt: Date;
  stoppedAt: Date | null;
  error: string | null;
  abort: () => void;
  done: Promise<void>;
}

export interface LocalEngineOptions {
  /** Lambda function name (as in serverless.yml) → handler. */
  handlers: Record<string, StepHandler>;
  logger: Logger;
  /** Where statemachines/ is; defaults to the project root. */
  root?: string;
  /** Wait-state durations in ms by state name (tests compress time with this). */
  waitOverridesMs?: Record<string, number>;
  /** Pause before each retry in ms by state name (tests compress a Retry's backoff with this). */
  retryOverridesMs?: Record<string, number | number[]>;
}

export class LocalEngine implements WorkflowEngine {
  readonly #machines = new Map<
    Phase,
    { machine: StateMachine; overrides: Record<string, StepHandler> }
  >();
  readonly #executions = new Map<string, Execution>();
  readonly #logger: Logger;
  readonly #waitOverridesMs: Record<string, number>;
  readonly #retryOverridesMs: Record<string, number | number[]>;

  constructor(options: LocalEngineOptions) {
    this.#logger = options.logger;
    this.#waitOverridesMs = options.waitOverridesMs ?? {};
    this.#retryOverridesMs = options.retryOverridesMs ?? {};
    for (const phase of ["provision", "release"] as const) {
      const { definition, bindings } = bindTasks(
        loadDefinition(definitionPath(phase, options.root)),
      );
      const overrides: Record<string, StepHandler> = {};
      for (const { stateName, functionName } of bindings) {
        const handler = options.handlers[functionName];
        if (!handler) {
          throw new Error(
            `${phase}: Task ${stateName} calls ${functionName}, which has no handler`,
          );
        }
        // What Lambda's own log shows in the cloud: which step failed, and why (error messages
        // never carry secrets).
        overrides[stateName] = async (event) => {
          try {
            return await handler(event);
          } catch (error) {
            this.#logger.warn(
              { state: stateName, error: errorName(error), err: errorMessage(error) },
              "step failed",
            );
            throw error;
          }
        };
      }
      const machine = new StateMachine(asDefinition(definition), {
        validationOptions: { checkArn: true, checkPaths: true },
      });
      this.#machines.set(phase, { machine, overrides });
    }
  }

  async start(phase: Phase, name: string, input: PhaseInput): Promise<{ started: boolean }> {
    if (this.#executions.has(name)) return { started: false };
    const entry = this.#machines.get(phase);
    if (!entry) throw new Error(`no state machine for phase ${phase}`);
    const log = this.#logger.child({ execution: name, bookingId: input.bookingId });
    const run = entry.machine.run(input as unknown as JsonValue, {
      overrides: {
        taskResourceLocalHandlers: entry.overrides as Record<
          string,
          (i: JsonValue) => Promise<JsonValue>
        >,
        waitTimeOverrides: this.#waitOverridesMs,
        retryIntervalOverrides: this.#retryOverridesMs,
      },
    });
    const execution: Execution = {
      name,
      phase,
      status: "RUNNING",
      startedAt: new Date(),
      stoppedAt: null,
      error: null,
      abort: run.abort,
      done: Promise.resolve(),
    };
    execution.done = run.result
      .then(
        () => {
          execution.status = "SUCCEEDED";
        },
        (error: unknown) => {
          execution.status =
            error instanceof ExecutionAbortedError
              ? "ABORTED"
              : error instanceof ExecutionTimeoutError
                ? "TIMED_OUT"
                : "FAILED";
          execution.error = error instanceof Error ? error.message : String(error);
        },
      )
      .finally(() => {
        execution.stoppedAt = new Date();
        log.info(
          { status: execution.status, error: execution.error ?? undefined },
          "execution ended",
        );
      });
    this.#executions.set(name, execution);
    void this.#trace(run.eventLogs, log);
    log.info({ phase }, "execution started");
    return { started: true };
  }

  async stop(name: string, cause: string): Promise<void> {
    const execution = this.#executions.get(name);
    if (execution?.status !== "RUNNING") return;
    this.#logger.info({ execution: name, cause }, "stopping execution");
    execution.abort();
    await execution.done;
  }

  async status(name: string): Promise<ExecutionStatus | null> {
    return this.#executions.get(name)?.status ?? null;
  }

  /** Executions still running. */
  running(): string[] {
    return [...this.#executions.values()].filter((e) => e.status === "RUNNING").map((e) => e.name);
  }

  /**
   * Waits up to `timeoutMs` for running executions to end by themselves, then aborts the rest.
   * Aborted ones are picked up again by the next listener's poll (same names, restarted).
   */
  async drain(timeoutMs: number): Promise<{ finished: string[]; handedOver: string[] }> {
    const running = [...this.#executions.values()].filter((e) => e.stoppedAt === null);
    const allDone = Promise.all(running.map((e) => e.done));
    if (Number.isFinite(timeoutMs)) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        allDone,
        new Promise((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    } else {
      await allDone;
    }
    const handedOver = running.filter((e) => e.status === "RUNNING");
    for (const execution of handedOver) execution.abort();
    await Promise.all(handedOver.map((e) => e.done));
    return {
      finished: running.filter((e) => !handedOver.includes(e)).map((e) => e.name),
      handedOver: handedOver.map((e) => e.name),
    };
  }

  async #trace(events: AsyncGenerator<EventLogLike>, log: Logger): Promise<void> {
    try {
      for await (const event of events) {
        if (event.type === "StateEntered" && event.state) {
          log.debug({ state: event.state.name }, "state entered");
        } else if (event.type === "StateRetried" && event.state) {
          log.warn({ state: event.state.name }, "state retried");
        } else if (event.type === "StateCaught" && event.state) {
          log.warn({ state: event.state.name }, "error caught");
        }
      }
    } catch {
      // The event stream ends with the execution; an aborted one may end it abruptly.
    }
  }
}

type JsonValue = Parameters<StateMachine["run"]>[0];
interface EventLogLike {
  type: string;
  state?: { name: string };
}

function asDefinition(definition: JsonObject): StateMachineDefinition {
  return definition as unknown as StateMachineDefinition;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}
