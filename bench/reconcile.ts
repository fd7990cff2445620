/**
 * Poll's reconciliation at lab scale: the first poll (every booking new) and two steady ones
 * (nothing changed; the second with the code warm, as a poller that has run for a while) over N
 * future bookings on N/10 hosts, against the embedded store (dynalite over LevelDB in a temporary
 * directory), beside the reconciliation as it was (bench/baseline/reconcile.ts), both measured
 * in this run.
 *
 * Three processes: the lab — dynalite behind a counter of its requests, and the simulated
 * dashboard paginated as DRF does it (reconcile-lab.ts) — and, for each design and size, a fresh
 * poller (reconcile-poller.ts). What is counted is what reached the store; the memory measured is
 * the poller's alone.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RequestCounts } from "../test/helpers/dynamo-counter";
import type { ScaleLabAddress } from "../test/helpers/scale-lab";
import type { PollFigures } from "./reconcile-poller";

export interface ReconcileRow extends PollFigures {
  bookings: number;
  hosts: number;
  design: "in memory" | "baseline";
  /** The first poll (every booking new), a steady one after it, and the next steady one. */
  poll: "first" | "steady" | "steady again";
  requests: number;
  writes: number;
  /** Conditional writes that failed (billed all the same). */
  failedWrites: number;
  itemReads: number;
}

interface Answer {
  kind: string;
  address?: ScaleLabAddress;
  counts?: RequestCounts;
  figures?: PollFigures;
}

/** A forked bench process, asked one thing at a time over IPC. */
class Child {
  readonly #child: ChildProcess;
  readonly #waiting: Array<{ resolve(answer: Answer): void; reject(error: Error): void }> = [];
  readonly #ready: Promise<Answer>;

  constructor(module: string, args: string[]) {
    this.#child = fork(join(import.meta.dirname, module), args, {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.#ready = new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
    this.#child.on("message", (answer: Answer) => this.#waiting.shift()?.resolve(answer));
    this.#child.once("exit", (code) => {
      for (const each of this.#waiting.splice(0)) {
        each.reject(new Error(`${module} exited (${code}) before it answered`));
      }
    });
  }

  ready(): Promise<Answer> {
    return this.#ready;
  }

  ask(message: { kind: string; address?: ScaleLabAddress }): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#child.send(message);
    });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once("exit", resolve));
    this.#child.send({ kind: "close" });
    await exited;
  }
}

/** Steady polls of one poller, beyond the rows: their wall times, in order. */
export interface SteadySeries {
  bookings: number;
  wallMs: number[];
}

/**
 * One design at one size: a fresh lab and a fresh poller, the first poll then two steady ones,
 * then `morePolls` steady ones more whose wall times alone are kept.
 */
async function measureOne(
  bookings: number,
  design: ReconcileRow["design"],
  morePolls: number,
): Promise<{ rows: ReconcileRow[]; more: number[] }> {
  const hosts = Math.max(1, Math.round(bookings / 10));
  const database = await mkdtemp(join(tmpdir(), "laas-bench-reconcile-"));
  const lab = new Child("reconcile-lab.ts", [String(bookings), String(hosts), database]);
  const poller = new Child("reconcile-poller.ts", [design]);
  try {
    const { address } = await lab.ready();
    await poller.ready();
    await poller.ask({ kind: "open", ...(address ? { address } : {}) });
    const rows: ReconcileRow[] = [];
    for (const poll of ["first", "steady", "steady again"] as const) {
      await lab.ask({ kind: "reset" });
      const { figures } = await poller.ask({ kind: "poll" });
      const { counts } = await lab.ask({ kind: "counts" });
      if (!figures || !counts) throw new Error("a bench process answered without figures");
      rows.push({
        bookings,
        hosts,
        design,
        poll,
        ...figures,
        requests: counts.total,
        writes: counts.writes,
        failedWrites: counts.failedWrites,
        itemReads: counts.byOperation.GetItem ?? 0,
      });
    }
    const more: number[] = [];
    for (let i = 0; i < morePolls; i++) {
      const { figures } = await poller.ask({ kind: "poll" });
      if (!figures) throw new Error("the poller answered without figures");
      more.push(figures.wallMs);
    }
    return { rows, more };
  } finally {
    await poller.close();
    await lab.close();
    await rm(database, { recursive: true, force: true });
  }
}

/**
 * Both designs at each size; the design of today's poll also polls `morePolls` times more, steady,
 * for the spread of a steady poll's time in a poller that keeps running (as a listener does).
 */
export async function reconcileBench(
  sizes: number[],
  morePolls = 0,
): Promise<{ rows: ReconcileRow[]; steady: SteadySeries[] }> {
  const rows: ReconcileRow[] = [];
  const steady: SteadySeries[] = [];
  for (const bookings of sizes) {
    for (const design of ["baseline", "in memory"] as const) {
      const measured = await measureOne(bookings, design, design === "in memory" ? morePolls : 0);
      rows.push(...measured.rows);
      if (design === "in memory") {
        const second = measured.rows.find((r) => r.poll === "steady")?.wallMs ?? 0;
        const third = measured.rows.find((r) => r.poll === "steady again")?.wallMs ?? 0;
        steady.push({ bookings, wallMs: [second, third, ...measured.more] });
      }
    }
  }
  return { rows, steady };
}
