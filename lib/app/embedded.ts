/**
 * The embedded default: one machine, no cloud account. The DynamoDB adapter against in-process
 * dynalite, and the local engine running statemachines/ with Tasks bound to the step handlers,
 * its executions journaled in the same database.
 *
 * Whoever opens the database itself runs the workflows it starts (and, as the listener, adopts
 * those of a process that is gone); a process that reaches a running listener's store instead
 * hands what it starts to that listener.
 */

import { join } from "node:path";
import { ExecutionHistoryFiles } from "../adapters/local/history-files";
import { LocalEngine, type StepHandler } from "../adapters/local/local-engine";
import { loadPharosConfig } from "../config/load";
import type { PharosConfig } from "../config/types";
import { createLogger, type Logger } from "../log";
import type { Dashboard } from "../ports/dashboard";
import { buildRuntime } from "./build";
import { openEmbeddedStore, type StoreHandle } from "./embedded-store";
import { installRuntime, type Runtime } from "./runtime";

export interface EmbeddedOptions {
  handlers: Record<string, StepHandler>;
  /** Become the listener that owns the database (only `laas listen`). */
  listen: boolean;
  logger?: Logger;
  dashboard?: Dashboard;
  waitOverridesMs?: Record<string, number>;
  retryOverridesMs?: Record<string, number | number[]>;
  heartbeatOverridesMs?: Record<string, number>;
  timeoutOverridesMs?: Record<string, number>;
  now?: () => Date;
}

export interface EmbeddedRuntime {
  runtime: Runtime;
  engine: LocalEngine;
  storeHandle: StoreHandle;
  close(): Promise<void>;
}

export async function openEmbeddedRuntime(
  config: string | PharosConfig,
  options: EmbeddedOptions,
): Promise<EmbeddedRuntime> {
  const loaded = typeof config === "string" ? await loadPharosConfig(config) : config;
  const logger = options.logger ?? createLogger();
  const storeHandle = await openEmbeddedStore(loaded.database, { listen: options.listen });
  const engine = new LocalEngine({
    handlers: options.handlers,
    journal: storeHandle.journal,
    history: new ExecutionHistoryFiles(join(loaded.database, "history")),
    owner: storeHandle.runner,
    logger,
    ...(options.waitOverridesMs ? { waitOverridesMs: options.waitOverridesMs } : {}),
    ...(options.retryOverridesMs ? { retryOverridesMs: options.retryOverridesMs } : {}),
    ...(options.heartbeatOverridesMs ? { heartbeatOverridesMs: options.heartbeatOverridesMs } : {}),
    ...(options.timeoutOverridesMs ? { timeoutOverridesMs: options.timeoutOverridesMs } : {}),
  });
  const runtime = buildRuntime({
    config: loaded,
    store: storeHandle.store,
    engine,
    logger,
    ...(options.dashboard ? { dashboard: options.dashboard } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  installRuntime(runtime);
  return {
    runtime,
    engine,
    storeHandle,
    close: () => storeHandle.close(),
  };
}
