/**
 * Fault injectors: each planned fault turned on at its time and off when its window ends, at
 * the fault point between LaaS and the service (never inside LaaS), and counted.
 */
import type { ChaosLab } from "./chaos-lab";
import type { HttpFault, HttpFaultMatch } from "./http-fault-proxy";
import type { Listeners } from "./listeners";
import type { DashboardEndpoint, FaultKind, PlannedFault } from "./plan";
import { Prng } from "./prng";

/** What was done, by fault kind: windows opened and what they met. */
export interface FaultCounts {
  /** Fault windows opened, by kind. */
  windows: Record<FaultKind, number>;
  /** Requests, connections or commands each kind of fault took. */
  hits: Record<FaultKind, number>;
  /** Dashboard faults' hits by endpoint and kind ("500 bookings"…). */
  dashboardHits: Record<string, number>;
  /** Host reboots that did not network-boot. */
  missedNetworkBoots: number;
  /** How long each service was down (refusing connections), ms. */
  downMs: Partial<Record<FaultKind, number>>;
}

const DASHBOARD_PATHS: Record<DashboardEndpoint, HttpFaultMatch> = {
  bookings: { methods: ["GET"], path: /^\/api\/bookings\// },
  users: { methods: ["GET"], path: /^\/api\/users\// },
  notes: { path: /^\/api\/resource_status\// },
};

const FOG_WRITES = ["POST", "PUT", "DELETE"];

function httpFault(kind: FaultKind): HttpFault {
  switch (kind) {
    case "fog-500":
    case "dashboard-500":
      return { kind: "status", status: 500 };
    case "fog-hang":
      return { kind: "hang-after-forward" };
    case "fog-drop":
      return { kind: "drop-after-forward" };
    case "dashboard-html":
      return { kind: "html" };
    case "dashboard-truncated":
      return { kind: "truncated" };
    default:
      throw new Error(`${kind} is not an HTTP fault`);
  }
}

export interface FaultInjector {
  readonly counts: FaultCounts;
  /** Turns on the faults whose time has come, and off those whose window has ended. */
  tick(elapsedMs: number): void;
  /** Ends every fault now; no more start. */
  stopAll(): void;
  /** Kills in flight (started, listener not yet back). */
  settled(): Promise<void>;
  /** Whether a no-network-boot fault holds this host now. */
  networkBootOff(host: string): boolean;
}

export function faultInjector(
  chaos: ChaosLab,
  listeners: Listeners,
  faults: readonly PlannedFault[],
  seed: number,
): FaultInjector {
  const zero = <T extends string>(keys: readonly T[]) =>
    Object.fromEntries(keys.map((k) => [k, 0])) as Record<T, number>;
  const kinds = [...new Set(faults.map((f) => f.kind))];
  const counts: FaultCounts = {
    windows: zero(kinds),
    hits: zero(kinds),
    dashboardHits: {},
    missedNetworkBoots: 0,
    downMs: {},
  };
  const pending = [...faults].sort((a, b) => a.atMs - b.atMs);
  const active: { until: number; stop: () => void }[] = [];
  const kills: Promise<void>[] = [];
  const sshDraws = new Prng(seed, "ssh-drop");
  let sshDrop: PlannedFault | null = null;
  let stopped = false;
  const { lab } = chaos;

  // SSH drops come as a command reaches a host: the relay's connections are cut while the
  // command runs (its answer lost), and new ones refused a moment.
  lab.hosts.onCommand((_host, argv) => {
    const fault = sshDrop;
    if (!fault || argv[0] === "reboot") return;
    if (!sshDraws.chance(fault.probability)) return;
    const after = sshDraws.int(0, 40);
    const refuse = sshDraws.int(0, 1_500);
    setTimeout(() => {
      if (sshDrop !== fault) return;
      const cut = chaos.relayProxy.cutAll();
      if (cut > 0) counts.hits["ssh-drop"] = (counts.hits["ssh-drop"] ?? 0) + 1;
      if (refuse > 0) chaos.relayProxy.refuseFor(refuse);
    }, after);
  });
  // A reboot of a host that does not network-boot is counted as it happens.
  const noBoot = new Set<string>();
  lab.hosts.onCommand((host, argv) => {
    if (argv[0] === "reboot" && noBoot.has(host)) counts.missedNetworkBoots += 1;
  });

  const begin = (fault: PlannedFault, elapsedMs: number): void => {
    counts.windows[fault.kind] = (counts.windows[fault.kind] ?? 0) + 1;
    const until = elapsedMs + fault.durationMs;
    const hit = () => {
      counts.hits[fault.kind] = (counts.hits[fault.kind] ?? 0) + 1;
    };
    switch (fault.kind) {
      case "fog-500":
      case "fog-hang":
      case "fog-drop": {
        const label = `${fault.kind}${fault.writesOnly ? " writes" : ""}`;
        const before = chaos.fogProxy.injected.length;
        const remove = chaos.fogProxy.addRule({
          label,
          fault: httpFault(fault.kind),
          probability: fault.probability,
          ...(fault.writesOnly ? { match: { methods: FOG_WRITES } } : {}),
        });
        active.push({
          until,
          stop: () => {
            remove();
            counts.hits[fault.kind] += chaos.fogProxy.injected
              .slice(before)
              .filter((i) => i.label === label).length;
          },
        });
        return;
      }
      case "dashboard-500":
      case "dashboard-html":
      case "dashboard-truncated": {
        const endpoint = fault.endpoint ?? "bookings";
        const label = `${fault.kind.slice("dashboard-".length)} ${endpoint}`;
        const before = chaos.dashboardProxy.injected.length;
        const remove = chaos.dashboardProxy.addRule({
          label,
          match: DASHBOARD_PATHS[endpoint],
          fault: httpFault(fault.kind),
          probability: fault.probability,
        });
        active.push({
          until,
          stop: () => {
            remove();
            const taken = chaos.dashboardProxy.injected
              .slice(before)
              .filter((i) => i.label === label).length;
            counts.hits[fault.kind] += taken;
            counts.dashboardHits[label] = (counts.dashboardHits[label] ?? 0) + taken;
          },
        });
        return;
      }
      case "no-network-boot": {
        const host = lab.inventory[fault.hostIndex ?? 0]!.name;
        lab.setNetworkBoot(host, false);
        noBoot.add(host);
        hit();
        active.push({
          until,
          stop: () => {
            lab.setNetworkBoot(host, true);
            noBoot.delete(host);
          },
        });
        return;
      }
      case "ssh-drop":
        sshDrop = fault;
        active.push({
          until,
          stop: () => {
            if (sshDrop === fault) sshDrop = null;
          },
        });
        return;
      case "ldap-down":
      case "smtp-down": {
        const point = fault.kind === "ldap-down" ? chaos.ldapProxy : chaos.smtpProxy;
        point.refuseFor(fault.durationMs);
        counts.hits[fault.kind] += point.cutAll();
        counts.downMs[fault.kind] = (counts.downMs[fault.kind] ?? 0) + fault.durationMs;
        return;
      }
      case "listener-kill":
        hit();
        kills.push(listeners.killAndRestart(fault.durationMs));
        return;
    }
  };

  return {
    counts,
    tick(elapsedMs) {
      for (let i = active.length - 1; i >= 0; i--) {
        if (active[i]!.until <= elapsedMs) active.splice(i, 1)[0]!.stop();
      }
      if (stopped) return;
      while (pending.length > 0 && pending[0]!.atMs <= elapsedMs) {
        // A fault meets nothing while no listener runs (a restart takes seconds): it waits for
        // the next one, and so do the faults planned after it.
        if (listeners.current() === null) return;
        begin(pending.shift()!, elapsedMs);
      }
    },
    stopAll() {
      stopped = true;
      pending.length = 0;
      for (const fault of active.splice(0)) fault.stop();
      chaos.fogProxy.releaseHung();
      chaos.dashboardProxy.releaseHung();
    },
    async settled() {
      await Promise.allSettled(kills);
    },
    networkBootOff: (host) => noBoot.has(host),
  };
}
