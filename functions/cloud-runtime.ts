/**
 * How a Lambda invocation gets its Runtime: built on first use from the environment serverless.yml
 * sets, then reused while the function is warm.
 *
 * LAAS_MODE=embedded (for `serverless invoke local`) runs against the embedded store and the local
 * engine instead; as nothing outlives the invocation there, the handler then waits for the
 * workflows it started and closes the store before returning.
 */
import { installRuntimeFactory, type Runtime } from "../lib/app/runtime";

let installed = false;
let invokedFunctionArn: string | undefined;
let closeEmbedded: (() => Promise<void>) | null = null;

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
      const { stepHandlers } = await import("./steps");
      const opened = await openEmbeddedRuntime(configPath, {
        handlers: stepHandlers,
        listen: false,
      });
      closeEmbedded = async () => {
        await opened.engine.drain(Number.POSITIVE_INFINITY);
        await opened.close();
      };
      return opened.runtime;
    }
    const { openCloudRuntime } = await import("../lib/app/cloud");
    return openCloudRuntime(configPath, invokedFunctionArn);
  });
}

/** In embedded mode: let the started workflows finish and release the store. */
export async function finishInvocation(): Promise<void> {
  const close = closeEmbedded;
  closeEmbedded = null;
  await close?.();
}
