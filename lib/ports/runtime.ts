/**
 * Everything a workflow step or a poll needs, behind ports. The cloud (Lambda) and the embedded
 * default (the `laas` command) build it differently (lib/app/); the steps never know which one
 * they got, and nothing outside lib/app/ depends on how it is built.
 */
import type { FogConfig, PharosConfig, VpnConfig } from "../config/types";
import type { Logger } from "../log";
import type { Dashboard } from "./dashboard";
import type { Directory } from "./directory";
import type { WorkflowEngine } from "./engine";
import type { Imager } from "./imager";
import type { JobsDashboard } from "./jobs-dashboard";
import type { Mailer } from "./mailer";
import type { PowerControl } from "./power";
import type { Relay } from "./relay";
import type { Store } from "./store";

export interface Runtime {
  config: PharosConfig;
  store: Store;
  /**
   * With pharos.yaml `dashboard_api: jobs`: the jobs API itself (task statuses); `dashboard` is
   * then its jobs seen as bookings (lifecycle/jobs/bookings.ts). Absent or null otherwise.
   */
  jobs?: JobsDashboard | null;
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
