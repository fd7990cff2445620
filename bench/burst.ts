/**
 * A burst: many bookings due at the same moment, one per host, on the simulated lab. The lab runs
 * in a process of its own (burst-lab.ts), as a real lab's servers are other machines; this
 * process runs LaaS as the listener does: a watcher cycle, then a poll, every second.
 *
 * - concurrent: poll as it is, hosts advanced side by side (ADVANCE_CONCURRENCY at a time);
 * - sequential: the same poll with a concurrency of 1, one booking after another, as before.
 *
 * Three setups, each design in each:
 * - idle: the embedded default (store, local engine) with steps that do nothing, so the
 *   workflows stop at their first wait: the start path alone;
 * - sfn: the embedded store, and Step Functions' StartExecution over HTTP answering after a fixed
 *   delay (sfn-standin.ts): on AWS the workflows run elsewhere, and a start waits on the network;
 * - real: the embedded default with the real steps (FOG, the hosts' SSH), until every booking is
 *   ready, against FOG's own limit: ⌈bookings / 10⌉ imagings one after another, FOG writing 10 at
 *   a time. FOG's clock runs `timeScale` times faster than the wall clock (its imaging, its
 *   queue); what LaaS does takes real time.
 *
 * Measured: the start lag (from the bookings' start to each execution's start: the journal's
 * record, or StartExecution's arrival), p50 / p95 / max, and the poll that started them. The idle
 * and sfn setups run `rounds` times, the designs in turn, and report medians.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { stepHandlers } from "../functions/steps";
import type { StepHandler } from "../lib/adapters/local/local-engine";
import { buildRuntime } from "../lib/app/build";
import { Driver } from "../lib/app/driver";
import { openEmbeddedRuntime } from "../lib/app/embedded";
import { openEmbeddedStore } from "../lib/app/embedded-store";
import type { Runtime } from "../lib/app/runtime";
import { main } from "../lib/cli/main";
import { loadPharosConfig } from "../lib/config/load";
import { ADVANCE_CONCURRENCY, poll } from "../lib/lifecycle/poll";
import { silentLogger } from "../lib/log";
import "../lib/polyfills";
import { startSfnStandIn } from "./sfn-standin";

export interface BurstOptions {
  bookings: number;
  /** How much faster than real time FOG images. */
  timeScale: number;
  /** Runs of the idle and sfn setups per design (medians reported). */
  rounds: number;
}

export type BurstSetup = "idle" | "sfn" | "real";

export interface BurstRow {
  setup: BurstSetup;
  design: "concurrent" | "sequential";
  concurrency: number;
  bookings: number;
  rounds: number;
  startLagP50Ms: number;
  startLagP95Ms: number;
  startLagMaxMs: number;
  /** The poll that started most of them: how long it took, how many it started. */
  burstPollMs: number;
  burstPollStarted: number;
  /** From the bookings' start until the last one is ready (wall clock); real setup only. */
  allReadyMs: number | null;
  /** From the bookings' start until FOG's last deploy completed; real setup only. */
  fogDoneMs: number | null;
  /** FOG's limit in wall-clock ms: ⌈bookings / 10⌉ imagings plus one start delay; real only. */
  limitMs: number | null;
}

const POLL_INTERVAL_MS = 1_000;
/** How long before their start the bookings are put on the dashboard. */
const LEAD_MS = 10_000;
/** StartExecution's time on AWS, in region (the stand-in's answer delay). */
export const SFN_LATENCY_MS = 50;
/** The simulated FOG's defaults (sim/fog-sim.ts): 10 transfers at once, 8 GB a minute. */
const FOG_QUEUE = 10;
const FOG_GB_PER_MINUTE = 8;
const FOG_START_DELAY_SECONDS = 10;
const IMAGE_GB = 16;
const FIRST_ID = 5000;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

interface LabProcess {
  configPath: string;
  deployedAt: number[];
  book(dueAt: number, count: number): void;
  close(): Promise<void>;
}

/** The simulated lab in a child process (burst-lab.ts), as a real lab is other machines. */
async function startLabProcess(args: Record<string, unknown>): Promise<LabProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, "burst-lab.ts"), JSON.stringify(args)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deployedAt: number[] = [];
  const ready = new Promise<string>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the lab process exited ${code}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const event = JSON.parse(line) as { lab?: { configPath: string }; deployed?: { at: number } };
      if (event.lab) resolve(event.lab.configPath);
      if (event.deployed) deployedAt.push(event.deployed.at);
    });
  });
  const send = (command: unknown) => child.stdin.write(`${JSON.stringify(command)}\n`);
  return {
    configPath: await ready,
    deployedAt,
    book: (dueAt, count) => send({ book: { dueAt, count } }),
    close: async () => {
      send({ close: true });
      await exited;
    },
  };
}

/** Every step stood in by one that does nothing: the workflows stop at their first wait. */
function idleSteps(): Record<string, StepHandler> {
  const handlers: Record<string, StepHandler> = {};
  for (const name of Object.keys(stepHandlers)) handlers[name] = (async () => ({})) as StepHandler;
  return handlers;
}

/** The real steps, MarkReady noting when each booking got there. */
function realSteps(readyAt: Map<string, number>): Record<string, StepHandler> {
  const markReady = stepHandlers.markReady as unknown as (event: unknown) => Promise<unknown>;
  return {
    ...stepHandlers,
    markReady: (async (event: { bookingId?: unknown }) => {
      const result = await markReady(event);
      readyAt.set(String(event.bookingId), Date.now());
      return result;
    }) as unknown as StepHandler,
  };
}

/** LaaS for one run, and when each of the burst's executions started. */
interface Side {
  runtime: Runtime;
  /** A watcher cycle (the listener's), or nothing where the workflows run elsewhere. */
  cycle(): Promise<unknown>;
  startedAt(): Promise<number[]>;
  close(): Promise<void>;
}

const isBurstBooking = (count: number) => (id: string) =>
  Number(id) >= FIRST_ID && Number(id) < FIRST_ID + count;

async function openSide(
  setup: BurstSetup,
  configPath: string,
  count: number,
  readyAt: Map<string, number>,
): Promise<Side> {
  const mine = isBurstBooking(count);
  if (setup === "sfn") {
    const config = await loadPharosConfig(configPath);
    const store = await openEmbeddedStore(config.database, { listen: true });
    const sfn = await startSfnStandIn(SFN_LATENCY_MS);
    const runtime = buildRuntime({
      config,
      store: store.store,
      engine: sfn.engine,
      logger: silentLogger,
    });
    return {
      runtime,
      cycle: async () => undefined,
      startedAt: async () =>
        [...sfn.startedAt].filter(([name]) => mine(name.split("-")[1] ?? "")).map(([, at]) => at),
      close: async () => {
        await sfn.close();
        await store.close();
      },
    };
  }
  const embedded = await openEmbeddedRuntime(configPath, {
    handlers: setup === "real" ? realSteps(readyAt) : idleSteps(),
    listen: true,
    logger: silentLogger,
  });
  const driver = new Driver(embedded, { adopt: true, intervalMs: POLL_INTERVAL_MS });
  return {
    runtime: embedded.runtime,
    cycle: () => driver.cycle(),
    startedAt: async () =>
      (await embedded.storeHandle.journal.list())
        .filter((r) => r.phase === "provision" && mine(r.input.bookingId))
        .map((r) => Date.parse(r.startedAt)),
    close: async () => {
      await embedded.engine.drain(0, 1_000);
      await embedded.close();
    },
  };
}

export async function burstRun(
  setup: BurstSetup,
  design: BurstRow["design"],
  options: Pick<BurstOptions, "bookings" | "timeScale">,
): Promise<BurstRow> {
  const concurrency = design === "concurrent" ? ADVANCE_CONCURRENCY : 1;
  const { bookings: count, timeScale } = options;
  const mine = isBurstBooking(count);
  const workDir = await mkdtemp(join(tmpdir(), `laas-bench-burst-${setup}-${design}-`));
  const imagingSeconds = (IMAGE_GB / FOG_GB_PER_MINUTE) * 60;
  const limitMs =
    ((Math.ceil(count / FOG_QUEUE) * imagingSeconds + FOG_START_DELAY_SECONDS) * 1000) / timeScale;
  const lab = await startLabProcess({
    workDir,
    hosts: count,
    timeScale,
    imageSizeGB: IMAGE_GB,
    // The last of FOG's waves ends long after the first: no deadline may cut it short.
    imagingTimeout: Math.ceil((4 * limitMs) / 1000) + 600,
  });
  const readyAt = new Map<string, number>();
  let side: Side | null = null;
  let running = true;
  let loop: Promise<void> = Promise.resolve();
  try {
    const quiet = () => undefined;
    const code = await main(["node", "laas", "reset-db", "--host", "--config", lab.configPath], {
      handlers: stepHandlers,
      out: quiet,
      err: quiet,
    });
    if (code !== 0) throw new Error(`laas reset-db --host exited ${code}`);
    const open = await openSide(setup, lab.configPath, count, readyAt);
    side = open;
    const polls: { ms: number; started: number }[] = [];
    // The listener's loop (lib/app/listener.ts): a watcher cycle, then a poll, every interval.
    loop = (async () => {
      while (running) {
        const next = Date.now() + POLL_INTERVAL_MS;
        await open.cycle();
        const at = Date.now();
        const report = await poll(open.runtime, { concurrency }).catch(() => null);
        polls.push({ ms: Date.now() - at, started: report?.started.length ?? 0 });
        await sleep(Math.max(0, next - Date.now()));
      }
    })();
    // Booked ahead, all for the same moment: polls store them as scheduled before it comes.
    const dueAt = Date.now() + LEAD_MS;
    lab.book(dueAt, count);
    for (;;) {
      const stored = (await open.runtime.store.listBookings()).filter((b) => mine(b.id));
      if (stored.length === count) break;
      if (Date.now() > dueAt)
        throw new Error("the bookings were not all stored before their start");
      await sleep(200);
    }
    const giveUpAt = dueAt + 20 * limitMs + 600_000;
    for (;;) {
      const done = setup === "real" ? readyAt.size : (await open.startedAt()).length;
      if (done >= count) break;
      const failed = (await open.runtime.store.listBookings()).find(
        (b) => mine(b.id) && b.state === "failed",
      );
      if (failed) throw new Error(`booking ${failed.id} failed: ${failed.failure}`);
      if (Date.now() > giveUpAt) throw new Error(`only ${done} of ${count} done`);
      await sleep(250);
    }
    const lags = (await open.startedAt()).map((at) => at - dueAt);
    if (lags.length !== count) throw new Error(`${lags.length} executions for ${count} bookings`);
    const burst = polls.reduce((a, b) => (b.started > a.started ? b : a));
    return {
      setup,
      design,
      concurrency,
      bookings: count,
      rounds: 1,
      startLagP50Ms: percentile(lags, 50),
      startLagP95Ms: percentile(lags, 95),
      startLagMaxMs: Math.max(...lags),
      burstPollMs: burst.ms,
      burstPollStarted: burst.started,
      allReadyMs: setup === "real" ? Math.max(...readyAt.values()) - dueAt : null,
      fogDoneMs: setup === "real" ? Math.max(...lab.deployedAt) - dueAt : null,
      limitMs: setup === "real" ? Math.round(limitMs) : null,
    };
  } finally {
    running = false;
    await loop;
    await side?.close();
    await lab.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

/** The row whose every figure is the median of the runs' (each run is one row). */
function medianRow(runs: BurstRow[]): BurstRow {
  const median = (pick: (row: BurstRow) => number) => percentile(runs.map(pick), 50);
  const first = runs[0]!;
  return {
    ...first,
    rounds: runs.length,
    startLagP50Ms: median((r) => r.startLagP50Ms),
    startLagP95Ms: median((r) => r.startLagP95Ms),
    startLagMaxMs: median((r) => r.startLagMaxMs),
    burstPollMs: median((r) => r.burstPollMs),
    burstPollStarted: median((r) => r.burstPollStarted),
  };
}

/**
 * A small run first, unreported (a process's first run pays for loading and compiling what the
 * others then reuse); then the idle and sfn setups, the designs in turn, `rounds` times; then
 * the real setup once per design.
 */
export async function burst(options: BurstOptions): Promise<BurstRow[]> {
  await burstRun("idle", "concurrent", { bookings: 10, timeScale: options.timeScale });
  const rows: BurstRow[] = [];
  for (const setup of ["idle", "sfn"] as const) {
    const runs: Record<BurstRow["design"], BurstRow[]> = { concurrent: [], sequential: [] };
    for (let round = 0; round < options.rounds; round++) {
      const order =
        round % 2 === 0
          ? (["concurrent", "sequential"] as const)
          : (["sequential", "concurrent"] as const);
      for (const design of order) runs[design].push(await burstRun(setup, design, options));
    }
    rows.push(medianRow(runs.concurrent), medianRow(runs.sequential));
  }
  for (const design of ["concurrent", "sequential"] as const) {
    rows.push(await burstRun("real", design, options));
  }
  return rows;
}
