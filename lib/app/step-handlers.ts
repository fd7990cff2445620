/**
 * The workflow steps as the local engine calls them: with the event alone, the runtime being the
 * one installed in this process (runtime.ts), as a Lambda handler finds its own.
 */
import type { StepHandler } from "../adapters/local/local-engine";
import { workflowSteps } from "../lifecycle/steps";
import { runtime } from "./runtime";

export function localStepHandlers(): Record<string, StepHandler> {
  const handlers: Record<string, StepHandler> = {};
  for (const [name, step] of Object.entries(workflowSteps)) {
    const run = step as (
      rt: Awaited<ReturnType<typeof runtime>>,
      event: unknown,
    ) => Promise<unknown>;
    handlers[name] = (async (event: unknown) => run(await runtime(), event)) as StepHandler;
  }
  return handlers;
}
