/**
 * How a Lambda invocation gets its Runtime: built on first use from the environment serverless.yml
 * sets, then reused while the function is warm.
 *
 * LAAS_MODE=embedded (for `serverless invoke local`) runs against the embedded store and the local
 * engine instead. As nothing outlives the invocation there, the handler then runs the watcher
 * until the workflows it started have ended, and closes the store before returning — unless a
 * listener runs on that store, which then runs them (they are handed to it).
 */
import { installRuntimeFactory, type Runtime } from "../lib/app/runtime";

let installed = false;
let invokedFunctionArn: string | undefined;
let closeEmbedded: (() => Promise<void>) | null = null;
let embeddedRunner: { pid: number; runsHere: boolean } | null = null;

/** Handlers pass their context's ARN: the runtime derives region and account from it. */
export function rememberInvocation(context: { invokedFunctionArn?: string } | undefined): void {
  invokedFunctionArn ??= context?.invokedFunctionArn;
}

export function installCloudRuntime(): void {
  if (installed) return;
  installed = true;
  installRuntimeFactory(async (): Promise<Runtime> => {
    const configPath = process.env.LAAS_CONFIG ?? "conf/pharos.yaml";
    if (process.env.LAAS_MODE === "embedded") {
      const { openEmbeddedRuntime } = await import("../lib/app/embedded");
      const { Driver } = await import("../lib/app/driver");
      const { stepHandlers } = await import("./steps");
      const opened = await openEmbeddedRuntime(configPath, {
        handlers: stepHandlers,
        listen: false,
      });
      embeddedRunner = { pid: opened.storeHandle.runner.pid, runsHere: opened.engine.runsHere };
      closeEmbedded = async () => {
        if (opened.engine.runsHere) await new Driver(opened, { adopt: false }).untilIdle();
        await opened.close();
      };
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
