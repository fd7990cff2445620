/**
 * How a Lambda invocation gets its Runtime: built on first use from the environment serverless.yml
 * sets, then reused while the function is warm.
 *
 * LAAS_MODE=embedded (for `serverless invoke local`) runs against the embedded store and the local
 * engine instead. As nothing outlives the invocation there, the handler then runs the watcher
 * until the workflows it started have ended, and closes the store before returning — unless a
 * listener runs on that store, which then runs them (they are handed to it).
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { installRuntimeFactory, type Runtime, runtime } from "../lib/app/runtime";

/** What a handler reads of the Lambda context. */
export interface LambdaContext {
  invokedFunctionArn?: string;
}

let installed = false;
let invokedFunctionArn: string | undefined;
let closeEmbedded: (() => Promise<void>) | null = null;
let embeddedRunner: { pid: number; runsHere: boolean } | null = null;

/** Handlers pass their context's ARN: the runtime derives region and account from it. */
export function rememberInvocation(context: LambdaContext | undefined): void {
  invokedFunctionArn ??= context?.invokedFunctionArn;
}

/**
 * The directory of serverless.yml above `from`, or null. The deployment package holds no
 * serverless.yml, so on Lambda there is none; under `serverless invoke local` the bundle runs from
 * the build folder inside the service directory (serverless-esbuild's .esbuild/.build/, which is
 * also the process's working directory then).
 */
export function serviceDirAbove(from: string): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "serverless.yml"))) return dir;
    if (dirname(dir) === dir) return null;
  }
}

/**
 * LAAS_CONFIG as the runtime opens it. A relative path means the same as where serverless reads it
 * (scripts/serverless-vars.cjs, for the schedules): relative to the service directory, wherever
 * the build folder put the bundle. On Lambda, with no service directory above, it is relative to
 * the package root, the function's working directory.
 */
export function configPathFrom(env: NodeJS.ProcessEnv, moduleDir: string): string {
  const configured = env.LAAS_CONFIG ?? "conf/pharos.yaml";
  if (isAbsolute(configured)) return configured;
  const serviceDir = serviceDirAbove(moduleDir);
  return serviceDir ? resolve(serviceDir, configured) : configured;
}

export function installCloudRuntime(): void {
  if (installed) return;
  installed = true;
  installRuntimeFactory(async (): Promise<Runtime> => {
    const configPath = configPathFrom(process.env, dirname(fileURLToPath(import.meta.url)));
    if (process.env.LAAS_MODE === "embedded") {
      const { openEmbeddedInvocation } = await import("./embedded-runtime");
      const opened = await openEmbeddedInvocation(configPath);
      embeddedRunner = opened.runner;
      closeEmbedded = opened.finish;
      return opened.runtime;
    }
    const { openCloudRuntime } = await import("../lib/app/cloud");
    return openCloudRuntime(configPath, invokedFunctionArn);
  });
}

/**
 * In embedded mode, the process that runs the workflows: this one, or the listener they are
 * handed to (null in the cloud).
 */
export function embeddedWorkflowRunner(): { pid: number; runsHere: boolean } | null {
  return embeddedRunner;
}

/** In embedded mode: let the started workflows finish and release the store. */
export async function finishInvocation(): Promise<void> {
  const close = closeEmbedded;
  closeEmbedded = null;
  await close?.();
}

/**
 * A workflow step's Lambda handler: the event its Task passes goes to `step` with the runtime.
 * The local engine calls the same function with the event alone. The context's ARN is remembered
 * on every invocation: the cloud runtime completes the state machines' ARNs from it.
 */
export function stepHandler<E, R>(
  step: (rt: Runtime, event: E) => Promise<R>,
): (event: E, context?: LambdaContext) => Promise<R> {
  installCloudRuntime();
  return async (event, context) => {
    rememberInvocation(context);
    return step(await runtime(), event);
  };
}

/** A scheduled function's handler (poll, watch, sweep); in embedded mode it finishes the run. */
export function scheduledHandler<R>(
  run: (rt: Runtime) => Promise<R>,
): (event: unknown, context?: LambdaContext) => Promise<R> {
  installCloudRuntime();
  return async (_event, context) => {
    rememberInvocation(context);
    try {
      return await run(await runtime());
    } finally {
      await finishInvocation();
    }
  };
}
