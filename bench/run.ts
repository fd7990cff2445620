/**
 * `npm run bench`: the figures of BENCHMARKS.md, each measured in the same run against the
 * polling design the workflows had before (bench/baseline/). Prints Markdown tables; options:
 *   --only fog|transitions|dead-time|reconcile|burst|bundles   one benchmark
 *   --rounds N                         dead-time rounds of three bookings (default 5)
 *   --burst N                          bookings due at once in the burst (default 200)
 *   --burst-scale X                    how much faster than real time FOG images there (default 20)
 *   --burst-rounds N                   runs of the burst's idle and sfn setups (default 3)
 *   --imports N                        fresh node processes per bundle import timed (default 10)
 *   --steady-polls N                   steady polls more per poller in reconcile (default 8)
 */
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { bundles } from "./bundles";
import { burst, SFN_LATENCY_MS } from "./burst";
import { deadTime } from "./dead-time";
import { fogRequests } from "./fog-requests";
import { reconcileBench } from "./reconcile";
import { transitions } from "./transitions";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    rounds: { type: "string", default: "5" },
    burst: { type: "string", default: "200" },
    "burst-scale": { type: "string", default: "20" },
    "burst-rounds": { type: "string", default: "3" },
    imports: { type: "string", default: "10" },
    "steady-polls": { type: "string", default: "8" },
  },
});
const wanted = (name: string) => values.only === undefined || values.only === name;
const print = (line = "") => process.stdout.write(`${line}\n`);
const table = (head: string[], rows: (string | number)[][]) => {
  print(`| ${head.join(" | ")} |`);
  print(`| ${head.map(() => "---").join(" | ")} |`);
  for (const row of rows) print(`| ${row.join(" | ")} |`);
  print();
};

print(
  `Run ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
);
print();

if (wanted("fog")) {
  const rows = await fogRequests([1, 10, 50, 200]);
  print("### FOG requests per cycle");
  print();
  const byHosts = new Map<number, typeof rows>();
  for (const row of rows) byHosts.set(row.hosts, [...(byHosts.get(row.hosts) ?? []), row]);
  table(
    [
      "hosts imaging",
      "watcher: requests",
      "watcher: KiB",
      "baseline: requests",
      "baseline: KiB",
      "requests ratio",
    ],
    [...byHosts].map(([hosts, pair]) => {
      const w = pair.find((r) => r.design === "watcher")!;
      const b = pair.find((r) => r.design === "baseline")!;
      return [
        hosts,
        w.requestsPerCycle,
        w.kilobytesPerCycle.toFixed(1),
        b.requestsPerCycle,
        b.kilobytesPerCycle.toFixed(1),
        `${(b.requestsPerCycle / w.requestsPerCycle).toFixed(0)}×`,
      ];
    }),
  );
}

if (wanted("transitions")) {
  const grid = [5, 20, 60].flatMap((imagingMinutes) =>
    [10, 90].map((installerMinutes) => ({ imagingMinutes, installerMinutes, bootMinutes: 3 })),
  );
  const rows = await transitions(grid);
  print("### State transitions and Lambda invocations per booking (provision + release)");
  print();
  table(
    [
      "imaging",
      "installer",
      "callbacks: transitions",
      "callbacks: invocations",
      "baseline: transitions",
      "baseline: invocations",
      "watcher runs meanwhile (lab-wide)",
    ],
    grid.map((d) => {
      const of = (design: string) =>
        rows.find(
          (r) =>
            r.design === design &&
            r.imagingMinutes === d.imagingMinutes &&
            r.installerMinutes === d.installerMinutes,
        )!;
      const c = of("callbacks");
      const b = of("baseline");
      return [
        `${d.imagingMinutes} min`,
        `${d.installerMinutes} min`,
        c.transitions,
        c.invocations,
        b.transitions,
        b.invocations,
        c.watcherMinutes,
      ];
    }),
  );
}

if (wanted("dead-time")) {
  const rows = await deadTime(Number(values.rounds));
  print("### Dead time from the event to the next step (interval 1 s)");
  print();
  table(
    ["event", "design", "samples", "p50", "p95", "p95 / interval"],
    rows.map((r) => [
      r.event,
      r.design,
      r.samples,
      `${r.p50Ms} ms`,
      `${r.p95Ms} ms`,
      (r.p95Ms / r.intervalMs).toFixed(2),
    ]),
  );
}

if (wanted("reconcile")) {
  const { rows, steady } = await reconcileBench([1_000, 10_000], Number(values["steady-polls"]));
  print("### Poll's reconciliation per poll, 10 bookings a host (embedded store)");
  print();
  const keys = [...new Set(rows.map((r) => `${r.bookings} ${r.poll}`))];
  const pairs = keys.map((key) => {
    const of = (design: string) =>
      rows.find((r) => `${r.bookings} ${r.poll}` === key && r.design === design)!;
    return { now: of("in memory"), before: of("baseline") };
  });
  const cells = (r: (typeof rows)[number]) => [
    r.requests,
    `${r.writes} (${r.failedWrites})`,
    r.itemReads,
    `${(r.wallMs / 1000).toFixed(2)} s`,
    `${r.rssGrowthMb} / ${r.heapGrowthMb} MB`,
  ];
  table(
    [
      "bookings (hosts)",
      "poll",
      "requests",
      "writes (failed)",
      "GetItem",
      "wall",
      "RSS / heap growth",
      "baseline: requests",
      "baseline: writes (failed)",
      "baseline: GetItem",
      "baseline: wall",
      "baseline: RSS / heap growth",
      "requests ratio",
      "wall ratio",
    ],
    pairs.map(({ now, before }) => [
      `${now.bookings} (${now.hosts})`,
      now.poll,
      ...cells(now),
      ...cells(before),
      `${(before.requests / Math.max(1, now.requests)).toFixed(1)}×`,
      `${(before.wallMs / Math.max(1, now.wallMs)).toFixed(1)}×`,
    ]),
  );
  print("### A steady poll's wall time, poll after poll in one poller (today's design)");
  print();
  const ordered = (values: number[]) => [...values].sort((a, b) => a - b);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  table(
    ["bookings", "steady polls", "1st", "median", "max", "over 1 s", "each"],
    steady.map(({ bookings, wallMs }) => {
      const sorted = ordered(wallMs);
      return [
        bookings,
        wallMs.length,
        seconds(wallMs[0] ?? 0),
        seconds(sorted[Math.floor((sorted.length - 1) / 2)] ?? 0),
        seconds(sorted.at(-1) ?? 0),
        wallMs.filter((ms) => ms > 1000).length,
        wallMs.map((ms) => (ms / 1000).toFixed(2)).join(", "),
      ];
    }),
  );
}

if (wanted("burst")) {
  const rows = await burst({
    bookings: Number(values.burst),
    timeScale: Number(values["burst-scale"]),
    rounds: Number(values["burst-rounds"]),
  });
  print(
    `### A burst: ${values.burst} bookings due at once, one per host (idle: steps that do nothing; sfn: StartExecution answering in ${SFN_LATENCY_MS} ms; real: the real steps, FOG ${values["burst-scale"]}× real time)`,
  );
  print();
  const ms = (value: number | null) => (value === null ? "–" : `${(value / 1000).toFixed(1)} s`);
  table(
    [
      "setup",
      "design",
      "concurrency",
      "runs (median)",
      "start lag p50",
      "p95",
      "max",
      "burst poll",
      "started by it",
      "all ready",
      "FOG done",
      "FOG's limit",
    ],
    rows.map((r) => [
      r.setup,
      r.design,
      r.concurrency,
      r.rounds,
      ms(r.startLagP50Ms),
      ms(r.startLagP95Ms),
      ms(r.startLagMaxMs),
      ms(r.burstPollMs),
      r.burstPollStarted,
      ms(r.allReadyMs),
      ms(r.fogDoneMs),
      ms(r.limitMs),
    ]),
  );
}

if (wanted("bundles")) {
  const rows = await bundles({ runs: Number(values.imports) });
  const kib = (bytes: number) => (bytes / 1024).toFixed(0);
  print("### Deployment packages and cold imports");
  print();
  table(
    [
      "package",
      "function (functions)",
      "zip KiB",
      "unzipped KiB",
      "loaded at a cold start KiB (+ maps)",
      "import ms, wall / CPU (medians)",
    ],
    rows.map((r) => [
      r.design,
      `${r.name} (${r.functions})`,
      kib(r.zipBytes),
      kib(r.unzippedBytes),
      r.loadedMapBytes > 0
        ? `${kib(r.loadedBytes)} (+ ${kib(r.loadedMapBytes)})`
        : kib(r.loadedBytes),
      `${r.importMs.toFixed(0)} / ${r.importCpuMs.toFixed(0)}`,
    ]),
  );
}
