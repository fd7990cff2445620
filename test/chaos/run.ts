/**
 * One chaos run: the plan drawn from the seed, the lab started with its fault points, the
 * listener started as a real process, the bookings put on the dashboard while the faults come and
 * go and the listener is killed and started again; then the faults stop, the lab is given time
 * to settle, and everything is collected and judged (invariants.ts).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { loadPharosConfig } from "../../lib/config/load";
import { type BookingTrack, bookingDriver } from "./bookings";
import { type ChaosLab, startChaosLab } from "./chaos-lab";
import {
  activeFogTask,
  collectLabState,
  collectLogs,
  collectStore,
  collectVpnEntries,
  type Evidence,
} from "./evidence";
import { type FaultCounts, faultInjector } from "./faults";
import { trackImaging } from "./imaging";
import { type Judged, judge } from "./invariants";
import { type Listeners, startListeners } from "./listeners";
import { type OperatorRelease, operator } from "./operator";
import { type ChaosPlan, makePlan, type PlanOptions } from "./plan";
import { type BookingSeen, sampler } from "./sampler";

export interface ChaosOptions extends PlanOptions {
  /** After the faults stop, how long the lab may take to settle (ms). */
  settleTimeoutMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Leave the lab's work folder (config, store, logs) behind. */
  keepWorkDir?: boolean;
}

export interface ChaosResult {
  plan: ChaosPlan;
  tracks: readonly BookingTrack[];
  counts: FaultCounts;
  midFlight: Record<"cancel" | "shorten" | "extend", number>;
  judged: Judged;
  /** When each booking was first seen in each state (ms from the run's start). */
  seen: Map<string, BookingSeen>;
  /** The lab's work folder (gone after the run unless kept). */
  workDir: string;
  kills: number;
  /** What the operator released (`laas host release`), and how it went. */
  operatorReleases: OperatorRelease[];
  /** Store samples taken during the run. */
  looks: number;
  quarantineAfter: number;
  timings: { setupMs: number; runMs: number; settleMs: number; totalMs: number };
  /** Whether the lab settled (every booking final, nothing left) before the settle timeout. */
  settled: boolean;
  startedAt: Date;
}

const TICK_MS = 250;
const SAMPLE_MS = 500;

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => undefined);
  const plan = makePlan(options);
  const startedAt = new Date();
  const t0 = Date.now();
  log(
    `chaos seed ${plan.seed}: ${plan.bookings.length} bookings on ${plan.hosts} hosts, ${plan.faults.length} faults planned`,
  );
  const chaos = await startChaosLab({
    seed: plan.seed,
    hosts: plan.hosts,
    users: plan.users,
    ...(options.keepWorkDir ? { keepWorkDir: true } : {}),
  });
  try {
    const config = await loadPharosConfig(chaos.configPath);
    const quarantineAfter = config.quarantineAfter ?? 2;
    const listeners = await startListeners(chaos.configPath, chaos.database);
    const setupMs = Date.now() - t0;
    log(`lab up in ${(setupMs / 1000).toFixed(1)} s (${chaos.workDir})`);

    const look = sampler(chaos.lab, listeners);
    const over = new Set(["released", "cancelled", "failed"]);
    const driver = bookingDriver(chaos.lab, plan.bookings, (id) =>
      over.has(look.latest.get(id) ?? ""),
    );
    const faults = faultInjector(chaos, listeners, plan.faults, plan.seed);
    const ops = operator(chaos.configPath, quarantineAfter, (host) => faults.networkBootOff(host));
    const runStart = Date.now();
    const imaging = trackImaging(chaos.lab, runStart);
    let lastSample = 0;
    let lastReport = 0;
    // The run: until every booking is on the dashboard and over, faults coming and going.
    while (!driver.allEnded()) {
      const elapsed = Date.now() - runStart;
      driver.tick(elapsed);
      if (elapsed >= plan.faultsEndMs) faults.stopAll();
      faults.tick(elapsed);
      if (elapsed - lastSample >= SAMPLE_MS) {
        lastSample = elapsed;
        await look.tick(elapsed);
        ops.tick(elapsed, look.hosts);
      }
      if (elapsed - lastReport >= 30_000) {
        lastReport = elapsed;
        const placed = driver.tracks.filter((t) => t.addedAtMs !== null).length;
        log(
          `${(elapsed / 1000).toFixed(0)} s: ${placed}/${plan.bookings.length} bookings placed, ${listeners.kills} kills`,
        );
      }
      await sleep(TICK_MS);
    }
    faults.stopAll();
    await faults.settled();
    const runMs = Date.now() - runStart;
    log(`all bookings over after ${(runMs / 1000).toFixed(0)} s; faults stopped, settling`);

    // Settling: every booking final, no FOG task active, no VPN user left — or the time is up.
    const settleStart = Date.now();
    const settleTimeoutMs = options.settleTimeoutMs ?? 150_000;
    let settled = false;
    while (Date.now() - settleStart < settleTimeoutMs) {
      await look.tick(Date.now() - runStart);
      ops.tick(Date.now() - runStart, look.hosts);
      if (await isSettled(chaos, listeners, driver.tracks)) {
        settled = true;
        break;
      }
      await sleep(1_000);
    }
    await ops.settled();
    const settleMs = Date.now() - settleStart;
    log(`${settled ? "settled" : "NOT settled"} after ${(settleMs / 1000).toFixed(0)} s`);

    const store = await collectStore(listeners);
    const vpnEntries = await collectVpnEntries(chaos);
    const labState = collectLabState(chaos);
    await listeners.stop();
    const evidence: Evidence = {
      ...store,
      ...labState,
      vpnEntries,
      logFiles: await collectLogs(chaos),
      outputs: listeners.outputs(),
    };
    const secrets = await chaos.configSecrets();
    listeners.storeSecrets.forEach((key, i) => {
      secrets.set(`listener ${i + 1}'s store credential`, key);
    });
    let n = 0;
    for (const password of [...look.hostPasswords, ...handedOverPasswords(evidence)]) {
      secrets.set(`a handed-over password (#${++n})`, password);
    }
    const judged = judge({
      evidence,
      tracks: driver.tracks,
      seen: look.seen,
      doubleHolds: look.doubleHolds,
      quarantines: look.quarantines,
      unexpectedExits: listeners.unexpectedExits,
      quarantineAfter,
      secrets,
      imaging,
      queuedLimitMs: 15_000,
      traffic: [
        {
          service: "dashboard",
          received: chaos.lab.dashboard.requests.length,
          forwarded: chaos.dashboardProxy.forwarded,
        },
        {
          service: "FOG",
          received: chaos.lab.fog.requests.length,
          forwarded: chaos.fogProxy.forwarded,
        },
      ],
    });
    return {
      plan,
      tracks: driver.tracks,
      counts: faults.counts,
      midFlight: driver.changes,
      judged,
      seen: look.seen,
      workDir: chaos.workDir,
      kills: listeners.kills,
      operatorReleases: ops.releases,
      looks: look.looks,
      quarantineAfter,
      timings: { setupMs, runMs, settleMs, totalMs: Date.now() - t0 },
      settled,
      startedAt,
    };
  } finally {
    await chaos.close();
  }
}

async function isSettled(
  chaos: ChaosLab,
  listeners: Listeners,
  tracks: readonly BookingTrack[],
): Promise<boolean> {
  const store = listeners.store();
  if (!store) return false;
  try {
    const bookings = new Map((await store.listBookings()).map((b) => [b.id, b]));
    const final = tracks.every((t) => {
      const state = bookings.get(String(t.plan.id))?.state;
      return state === "released" || state === "cancelled" || state === "failed";
    });
    if (!final) return false;
    const hosts = await store.listHosts();
    if (hosts.some((h) => h.state !== "free" && h.state !== "quarantined")) return false;
    if (chaos.lab.fog.tasks().some(activeFogTask)) return false;
    return (await collectVpnEntries(chaos)).length === 0;
  } catch {
    return false;
  }
}

/** The passwords the hand-over mails gave (VPN and root): secrets nothing else may show. */
function handedOverPasswords(evidence: Evidence): string[] {
  const passwords: string[] = [];
  for (const mail of evidence.mails) {
    for (const match of mail.text.matchAll(/^\s*Password:\s+(\S+)\s*$/gm)) {
      if (!match[1]!.startsWith("(")) passwords.push(match[1]!);
    }
  }
  return passwords;
}
