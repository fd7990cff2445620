/**
 * Where a step finds its Runtime (lib/ports/runtime.ts): installed by the embedded default, or
 * built on first use by the factory the cloud installs.
 */
import type { Runtime } from "../ports/runtime";

export type { Runtime };

let current: Runtime | Promise<Runtime> | null = null;
let factory: (() => Promise<Runtime>) | null = null;

/** The embedded default installs its runtime before starting the engine. */
export function installRuntime(runtime: Runtime): void {
  current = runtime;
}

/** The cloud installs a factory: built on the first invocation, then reused while warm. */
export function installRuntimeFactory(build: () => Promise<Runtime>): void {
  factory = build;
}

export function resetRuntime(): void {
  current = null;
}

export async function runtime(): Promise<Runtime> {
  if (current) return current;
  if (!factory) {
    throw new Error("no runtime installed: the handler was called outside the cloud or the CLI");
  }
  const building = factory();
  current = building;
  try {
    const built = await building;
    current = built;
    return built;
  } catch (error) {
    current = null;
    throw error;
  }
}
