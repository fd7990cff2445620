/**
 * Everything a workflow step or a poll needs, behind ports. The cloud (Lambda) and the embedded
 * default (the `laas` command) build it differently; the steps never know which one they got.
 */
import type { FogConfig, PharosConfig, VpnConfig } from "../config/types";
import type { Logger } from "../log";
import type { Dashboard } from "../ports/dashboard";
import type { Directory } from "../ports/directory";
import type { WorkflowEngine } from "../ports/engine";
import type { Imager } from "../ports/imager";
import type { Mailer } from "../ports/mailer";
import type { PowerControl } from "../ports/power";
import type { Relay } from "../ports/relay";
import type { Store } from "../ports/store";

export interface Runtime {
  config: PharosConfig;
  store: Store;
  dashboard: Dashboard;
  engine: WorkflowEngine;
  /** FOG server credentials live in each installer config, so imagers are made per config. */
  imagerFor(fog: FogConfig): Imager;
  power: PowerControl;
  /** The lab-side relay, when configured (everything after imaging needs it). */
  relay: Relay | null;
  /** The directory of a vpn config (installer configs name their own); close it after use. */
  directoryFor(vpn: VpnConfig): Directory;
  /** Outgoing mail for hand-overs, when pharos.yaml has a handover section. */
  mailer: Mailer | null;
  logger: Logger;
  now(): Date;
}

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
