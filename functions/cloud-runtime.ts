/**
 * How a Lambda invocation gets its Runtime: built on first use from the environment serverless.yml
 * sets, then reused while the function is warm. LAAS_MODE=embedded (used by
 * `serverless invoke local`) runs against the embedded store and the local engine instead.
 */
import { installRuntimeFactory, type Runtime } from "../lib/app/runtime";

let installed = false;

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
      return opened.runtime;
    }
    const { openCloudRuntime } = await import("../lib/app/cloud");
    return openCloudRuntime(configPath);
  });
}
