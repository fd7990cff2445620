/**
 * LAAS_MODE=embedded for `serverless invoke local`: the embedded store and the local engine, with
 * the workflow steps bound in-process (lib/app/step-handlers.ts; this folder's Lambda handlers
 * would close an import circle, as they import cloud-runtime.ts, which loads this module).
 * Loaded by cloud-runtime.ts only in that mode; the cloud packages get embedded-runtime.cloud.ts
 * in its place (scripts/esbuild-plugins.cjs), so that none of this is in them.
 */
import { Driver } from "../lib/app/driver";
import { openEmbeddedRuntime } from "../lib/app/embedded";
import type { Runtime } from "../lib/app/runtime";
import { localStepHandlers } from "../lib/app/step-handlers";

export interface EmbeddedInvocation {
  runtime: Runtime;
  /** The process that runs the workflows: this one, or the listener they are handed to. */
  runner: { pid: number; runsHere: boolean };
  /** Lets the workflows started here finish (when they run here), then releases the store. */
  finish(): Promise<void>;
}

export async function openEmbeddedInvocation(configPath: string): Promise<EmbeddedInvocation> {
  const opened = await openEmbeddedRuntime(configPath, {
    handlers: localStepHandlers(),
    listen: false,
  });
  return {
    runtime: opened.runtime,
    runner: { pid: opened.storeHandle.runner.pid, runsHere: opened.engine.runsHere },
    finish: async () => {
      if (opened.engine.runsHere) await new Driver(opened, { adopt: false }).untilIdle();
      await opened.close();
    },
  };
}
