/**
 * The poller of bench/reconcile.ts in a process of its own, a fresh one for each design and lab
 * size, so that the memory one poll takes is not hidden by what an earlier one left allocated.
 * Started with `fork`, arguments: the design ("in memory" or "baseline"); talks over IPC:
 *   ← { kind: "open", address }   → { kind: "open" }   clients opened and warmed up (a few requests)
 *   ← { kind: "poll" }            → { kind: "poll", figures }
 *   ← { kind: "close" }                                 exits
 * Wall time is the whole poll, the dashboard's pages included. RSS and heap growth are the
 * highest seen during the poll (sampled every 5 ms, and at its end) less what they were before
 * it, after a full garbage collection.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import "../lib/polyfills";
import { poll } from "../lib/lifecycle/poll";
import type { ReconcileReport } from "../lib/lifecycle/reconcile";
import { silentLogger } from "../lib/log";
import type { ExecutionStatus, WorkflowEngine } from "../lib/ports/engine";
import { POLL_LAB } from "../test/helpers/poll-lab";
import {
  openDashboard,
  openStore,
  SCALE_NOW,
  type ScaleLabAddress,
} from "../test/helpers/scale-lab";
import { baselineReconcile } from "./baseline/reconcile";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

export interface PollFigures {
  wallMs: number;
  rssGrowthMb: number;
  heapGrowthMb: number;
  created: number;
}

/** No booking is due: the engine is never asked to start anything. */
const idleEngine: WorkflowEngine = {
  start: async () => ({ started: false }),
  stop: async () => undefined,
  status: async (): Promise<ExecutionStatus | null> => null,
  sendTaskSuccess: async () => "gone" as const,
  sendTaskFailure: async () => "gone" as const,
  sendTaskHeartbeat: async () => "gone" as const,
  history: async () => null,
};

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const design = process.argv[2];
if (design !== "in memory" && design !== "baseline") {
  throw new Error(`design must be "in memory" or "baseline", not ${JSON.stringify(design)}`);
}
const send = (message: unknown) => process.send?.(message);
let run: (() => Promise<ReconcileReport>) | null = null;

async function open(address: ScaleLabAddress): Promise<void> {
  const { store } = openStore(address);
  const dashboard = openDashboard(address);
  const deps = {
    dashboard,
    store,
    engine: idleEngine,
    logger: silentLogger,
    now: () => SCALE_NOW,
    config: POLL_LAB,
    mailer: null,
  };
  // Loaded and connected before anything is measured: one item read, one scan, one page.
  await store.getHost("h1");
  await store.listBookings();
  for await (const _ of dashboard.listBookingPages()) break;
  run = async () => {
    if (design === "in memory") return poll(deps);
    const report: ReconcileReport = {
      seen: 0,
      created: [],
      updated: [],
      vanished: [],
      refused: [],
    };
    await baselineReconcile(deps, report);
    return report;
  };
}

async function measure(once: () => Promise<ReconcileReport>): Promise<PollFigures> {
  gc();
  const before = process.memoryUsage();
  let rss = before.rss;
  let heap = before.heapUsed;
  const sample = () => {
    const now = process.memoryUsage();
    rss = Math.max(rss, now.rss);
    heap = Math.max(heap, now.heapUsed);
  };
  const sampler = setInterval(sample, 5);
  const started = performance.now();
  const report = await once();
  const wallMs = performance.now() - started;
  clearInterval(sampler);
  sample();
  return {
    wallMs: Math.round(wallMs),
    rssGrowthMb: Math.round((rss - before.rss) / 2 ** 20),
    heapGrowthMb: Math.round((heap - before.heapUsed) / 2 ** 20),
    created: report.created.length,
  };
}

process.on("message", (message: { kind?: string; address?: ScaleLabAddress }) => {
  const answer = async () => {
    switch (message.kind) {
      case "open":
        if (!message.address) throw new Error("no lab address to open");
        await open(message.address);
        return { kind: "open" };
      case "poll":
        if (!run) throw new Error("poll before open");
        return { kind: "poll", figures: await measure(run) };
      default:
        process.exit(0);
    }
  };
  answer().then(send, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
});
send({ kind: "ready" });
