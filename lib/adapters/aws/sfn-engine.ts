/**
 * AWS Step Functions as the workflow engine. Step Functions itself refuses a second execution of
 * a name within a state machine (ExecutionAlreadyExists), which is what makes poll's starts
 * idempotent in the cloud.
 */
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  InvalidToken,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
  TaskDoesNotExist,
  TaskTimedOut,
} from "@aws-sdk/client-sfn";
import { type Phase, phaseOfExecution } from "../../domain/booking";
import type { ExecutionEvent } from "../../domain/execution-history";
import type { JsonObject } from "../../domain/run";
import type { ExecutionStatus, PhaseInput, TokenAnswer, WorkflowEngine } from "../../ports/engine";
import { executionEventsOf } from "./sfn-history";

/** SendTaskFailure's limits: error up to 256 characters, cause up to 32,768. */
const MAX_ERROR_CHARS = 256;
const MAX_CAUSE_CHARS = 32_768;
/** GetExecutionHistory's largest page (its default is 100). */
const HISTORY_PAGE_EVENTS = 1_000;

export interface StateMachineArns {
  provision: string;
  release: string;
}

/**
 * State machines from LAAS_PROVISION_STATE_MACHINE / LAAS_RELEASE_STATE_MACHINE: full ARNs, or
 * names completed with the partition, region and account of the calling function's own ARN.
 */
export function stateMachineArnsFromEnv(
  env: NodeJS.ProcessEnv,
  functionArn?: string,
): StateMachineArns {
  const provision = env.LAAS_PROVISION_STATE_MACHINE;
  const release = env.LAAS_RELEASE_STATE_MACHINE;
  if (!provision || !release) {
    throw new Error(
      "LAAS_PROVISION_STATE_MACHINE and LAAS_RELEASE_STATE_MACHINE must name the state machines",
    );
  }
  return {
    provision: completeArn(provision, functionArn),
    release: completeArn(release, functionArn),
  };
}

function completeArn(nameOrArn: string, functionArn: string | undefined): string {
  if (nameOrArn.startsWith("arn:")) return nameOrArn;
  const [, partition, , region, account] = functionArn?.split(":") ?? [];
  if (!partition || !region || !account) {
    throw new Error(
      `cannot complete state machine ${nameOrArn} into an ARN without the function's ARN`,
    );
  }
  return `arn:${partition}:states:${region}:${account}:stateMachine:${nameOrArn}`;
}

export class StepFunctionsEngine implements WorkflowEngine {
  readonly #client: SFNClient;
  readonly #arns: StateMachineArns;

  /** Client from the SDK's usual resolution (AWS_ENDPOINT_URL for LocalStack), ARNs from the env. */
  static fromEnv(env: NodeJS.ProcessEnv, functionArn?: string): StepFunctionsEngine {
    return new StepFunctionsEngine(new SFNClient({}), stateMachineArnsFromEnv(env, functionArn));
  }

  constructor(client: SFNClient, arns: StateMachineArns) {
    this.#client = client;
    this.#arns = arns;
  }

  async start(phase: Phase, name: string, input: PhaseInput): Promise<{ started: boolean }> {
    try {
      await this.#client.send(
        new StartExecutionCommand({
          stateMachineArn: this.#arns[phase],
          name,
          input: JSON.stringify(input),
        }),
      );
      return { started: true };
    } catch (error) {
      if (error instanceof ExecutionAlreadyExists) return { started: false };
      throw error;
    }
  }

  async stop(name: string, cause: string): Promise<void> {
    try {
      await this.#client.send(
        new StopExecutionCommand({ executionArn: this.#executionArn(name), cause }),
      );
    } catch (error) {
      if (!(error instanceof ExecutionDoesNotExist)) throw error;
    }
  }

  async status(name: string): Promise<ExecutionStatus | null> {
    try {
      const answer = await this.#client.send(
        new DescribeExecutionCommand({ executionArn: this.#executionArn(name) }),
      );
      if (answer.status === "PENDING_REDRIVE") return "RUNNING";
      return (answer.status as ExecutionStatus | undefined) ?? null;
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return null;
      throw error;
    }
  }

  /**
   * The execution's history, every page of it, oldest first (GetExecutionHistory's default
   * order). Without the execution data: states' inputs and outputs may hold what a step was given.
   */
  async history(name: string): Promise<ExecutionEvent[] | null> {
    const executionArn = this.#executionArn(name);
    const events: HistoryEvent[] = [];
    let nextToken: string | undefined;
    try {
      do {
        const page = await this.#client.send(
          new GetExecutionHistoryCommand({
            executionArn,
            includeExecutionData: false,
            maxResults: HISTORY_PAGE_EVENTS,
            nextToken,
          }),
        );
        events.push(...(page.events ?? []));
        nextToken = page.nextToken;
      } while (nextToken);
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return null;
      throw error;
    }
    return executionEventsOf(events);
  }

  sendTaskSuccess(token: string, output: JsonObject): Promise<TokenAnswer> {
    return this.#answer(
      new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) }),
    );
  }

  sendTaskFailure(token: string, error: string, cause: string): Promise<TokenAnswer> {
    return this.#answer(
      new SendTaskFailureCommand({
        taskToken: token,
        error: error.slice(0, MAX_ERROR_CHARS),
        cause: cause.slice(0, MAX_CAUSE_CHARS),
      }),
    );
  }

  sendTaskHeartbeat(token: string): Promise<TokenAnswer> {
    return this.#answer(new SendTaskHeartbeatCommand({ taskToken: token }));
  }

  /** A token Step Functions no longer knows (completed, timed out, execution ended) is `gone`. */
  async #answer(
    command: SendTaskSuccessCommand | SendTaskFailureCommand | SendTaskHeartbeatCommand,
  ): Promise<TokenAnswer> {
    try {
      // The three commands share their output shape; the union needs one send per type.
      if (command instanceof SendTaskSuccessCommand) await this.#client.send(command);
      else if (command instanceof SendTaskFailureCommand) await this.#client.send(command);
      else await this.#client.send(command);
      return "accepted";
    } catch (error) {
      if (
        error instanceof TaskDoesNotExist ||
        error instanceof TaskTimedOut ||
        error instanceof InvalidToken
      ) {
        return "gone";
      }
      throw error;
    }
  }

  /** An execution's ARN is its state machine's with `execution` for `stateMachine`, plus the name. */
  #executionArn(name: string): string {
    const phase = phaseOfExecution(name);
    return `${this.#arns[phase].replace(":stateMachine:", ":execution:")}:${name}`;
  }
}
