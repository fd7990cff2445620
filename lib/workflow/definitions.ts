/**
 * The state machine files in statemachines/ are the single source for both engines. A Task calls
 * a Lambda function in one of two ways: `Resource: {Fn::GetAtt: [fn, Arn]}` (the step returns its
 * result), or a callback task — `Resource: arn:aws:states:::lambda:invoke.waitForTaskToken` with
 * `Parameters.FunctionName: {Fn::GetAtt: [fn, Arn]}` — whose function hands the task token out and
 * whose result is whatever completes that token later. On AWS, serverless-step-functions turns the
 * references into Lambda ARNs. Locally, bindTasks() rewrites them to placeholder ARNs and reports
 * which function each Task state calls, so the local engine can run the handler in-process.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { Phase } from "../domain/booking";

export type JsonObject = { [key: string]: unknown };

const here = dirname(fileURLToPath(import.meta.url));

/**
 * statemachines/ is found by walking up from this module: from lib/workflow/ when run from
 * source, from wherever a bundler put it otherwise (serverless-esbuild's .esbuild/.build/).
 */
export function definitionPath(phase: Phase, root = projectRoot()): string {
  return join(root, "statemachines", `${phase}.asl.yaml`);
}

function projectRoot(): string {
  for (let dir = here; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "statemachines", "provision.asl.yaml"))) return dir;
    if (dirname(dir) === dir) return process.cwd();
  }
}

export function loadDefinition(path: string): JsonObject {
  const parsed: unknown = parse(readFileSync(path, "utf8"));
  if (!isObject(parsed) || !isObject(parsed.States)) {
    throw new Error(`${path}: not a state machine definition (no States)`);
  }
  return parsed;
}

/** The Resource of a callback task: a Lambda invocation that waits for its task token. */
export const CALLBACK_RESOURCE = "arn:aws:states:::lambda:invoke.waitForTaskToken";

export interface CallbackLimits {
  heartbeatSeconds: number | null;
  timeoutSeconds: number | null;
}

export interface TaskBinding {
  stateName: string;
  functionName: string;
  /** The state's TimeoutSeconds, when it has one. */
  timeoutSeconds: number | null;
  /** Set for a callback task (`.waitForTaskToken`), with its HeartbeatSeconds and TimeoutSeconds. */
  callback: CallbackLimits | null;
}

/** Every state of the machine, including those inside Parallel branches and Map iterators. */
export function* allStates(definition: JsonObject): Generator<[string, JsonObject]> {
  const states = definition.States;
  if (!isObject(states)) return;
  for (const [name, state] of Object.entries(states)) {
    if (!isObject(state)) continue;
    yield [name, state];
    const branches = Array.isArray(state.Branches) ? state.Branches : [];
    for (const branch of branches) {
      if (isObject(branch)) yield* allStates(branch);
    }
    const iterator = state.ItemProcessor ?? state.Iterator;
    if (isObject(iterator)) yield* allStates(iterator);
  }
}

function getAttFunction(reference: unknown): string | null {
  if (!isObject(reference)) return null;
  const getAtt = reference["Fn::GetAtt"];
  if (Array.isArray(getAtt) && typeof getAtt[0] === "string" && getAtt[1] === "Arn") {
    return getAtt[0];
  }
  return null;
}

export function isCallbackTask(state: JsonObject): boolean {
  return state.Type === "Task" && state.Resource === CALLBACK_RESOURCE;
}

/**
 * The function a Task calls: its `Resource: {Fn::GetAtt: [fn, Arn]}`, or for a callback task its
 * `Parameters.FunctionName`; null when it names none that way.
 */
export function taskFunction(state: JsonObject): string | null {
  if (isCallbackTask(state)) {
    const parameters = state.Parameters;
    return isObject(parameters) ? getAttFunction(parameters.FunctionName) : null;
  }
  return getAttFunction(state.Resource);
}

function secondsField(state: JsonObject, field: string): number | null {
  const value = state[field];
  return typeof value === "number" ? value : null;
}

/** A copy of the definition whose Task resources are plain ARNs, and which Task calls what. */
export function bindTasks(definition: JsonObject): {
  definition: JsonObject;
  bindings: TaskBinding[];
} {
  const copy = structuredClone(definition);
  const bindings: TaskBinding[] = [];
  for (const [stateName, state] of allStates(copy)) {
    if (state.Type !== "Task") continue;
    const functionName = taskFunction(state);
    if (!functionName) {
      throw new Error(`Task state ${stateName} does not name a function with Fn::GetAtt`);
    }
    const arn = `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`;
    if (isCallbackTask(state) && isObject(state.Parameters)) {
      state.Parameters.FunctionName = arn;
      bindings.push({
        stateName,
        functionName,
        timeoutSeconds: secondsField(state, "TimeoutSeconds"),
        callback: {
          heartbeatSeconds: secondsField(state, "HeartbeatSeconds"),
          timeoutSeconds: secondsField(state, "TimeoutSeconds"),
        },
      });
    } else {
      state.Resource = arn;
      bindings.push({
        stateName,
        functionName,
        timeoutSeconds: secondsField(state, "TimeoutSeconds"),
        callback: null,
      });
    }
  }
  return { definition: copy, bindings };
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
