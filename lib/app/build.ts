/**
 * Assembles a Runtime from the lab's config and a store and engine. The adapters for the lab's
 * own services (dashboard, FOG, power) are the same in the cloud and on one machine.
 */

import { FogClient } from "../adapters/fog/fog-client";
import { IpmiPowerControl } from "../adapters/ipmi/ipmi-power";
import { LaasJobsDashboard } from "../adapters/laas-jobs/jobs-client";
import { LdapDirectory } from "../adapters/ldap/ldap-directory";
import { PharosDashboard } from "../adapters/pharos/dashboard-client";
import { PowerByType } from "../adapters/power-by-type";
import { SmtpMailer } from "../adapters/smtp/smtp-mailer";
import { RelayPowerControl } from "../adapters/ssh/relay-power";
import { SshPowerControl } from "../adapters/ssh/ssh-power";
import { type ForwardTargets, SshRelay } from "../adapters/ssh/ssh-relay";
import type { FogConfig, PharosConfig, VpnConfig } from "../config/types";
import { JobBookings } from "../lifecycle/jobs/bookings";
import type { Logger } from "../log";
import type { Dashboard } from "../ports/dashboard";
import type { Directory } from "../ports/directory";
import type { WorkflowEngine } from "../ports/engine";
import type { Imager } from "../ports/imager";
import type { JobsDashboard } from "../ports/jobs-dashboard";
import type { Store } from "../ports/store";
import type { Runtime } from "./runtime";

export interface RuntimeParts {
  config: PharosConfig;
  store: Store;
  engine: WorkflowEngine;
  logger: Logger;
  dashboard?: Dashboard;
  /** The jobs API (tests); by default from pharos.yaml (`dashboard_api: jobs`), else null. */
  jobs?: JobsDashboard | null;
  now?: () => Date;
}

/** The jobs API client when pharos.yaml chooses it. */
function jobsDashboardOf(config: PharosConfig, logger: Logger): JobsDashboard | null {
  if (config.dashboardApi !== "jobs" || !config.jobs) return null;
  return new LaasJobsDashboard(
    { url: config.dashboard, lab: config.jobs.lab, token: config.token },
    logger,
  );
}

export function buildRuntime(parts: RuntimeParts): Runtime {
  const { config, logger } = parts;
  const imagers = new Map<string, Imager>();
  const relay = config.relay ? new SshRelay(config.relay, forwardTargets(config), logger) : null;
  const jobs = parts.jobs !== undefined ? parts.jobs : jobsDashboardOf(config, logger);
  return {
    config,
    store: parts.store,
    engine: parts.engine,
    logger,
    now: parts.now ?? (() => new Date()),
    jobs,
    dashboard:
      parts.dashboard ??
      (jobs
        ? new JobBookings(jobs.lab, parts.store, config, logger)
        : new PharosDashboard(
            { url: config.dashboard, token: config.token, inventory: config.inventory },
            logger,
          )),
    // One client per FOG server and credentials (installer configs may name different servers).
    imagerFor(fog: FogConfig): Imager {
      const key = [fog.server, fog.apiKey.reveal(), fog.userKey.reveal()].join("\u0000");
      let imager = imagers.get(key);
      if (!imager) {
        imager = new FogClient(fog, logger);
        imagers.set(key, imager);
      }
      return imager;
    },
    relay,
    directoryFor: (vpn: VpnConfig): Directory => new LdapDirectory(vpn, logger),
    mailer: config.handover ? new SmtpMailer(config.handover.email, logger) : null,
    // With a relay, hosts are reached through it; without one (imaging only), directly. IPMI
    // runs ipmitool on the relay, per host as its power.type says.
    power: new PowerByType({
      ssh: relay ? new RelayPowerControl(relay, logger) : new SshPowerControl({ logger }),
      ipmi: relay ? new IpmiPowerControl(relay, logger) : null,
    }),
  };
}

/**
 * The lab's subnets, and the DHCP servers the installer configs name by host name (their keys are
 * pinned): the only places the relay is asked to forward to.
 */
function forwardTargets(config: PharosConfig): ForwardTargets {
  const names = new Set<string>();
  for (const installer of [...config.defaultConfigs.values(), config.cleanConfig]) {
    if (installer.dhcpServer !== null) names.add(installer.dhcpServer);
  }
  return { labSubnets: config.labSubnets, names: [...names] };
}
