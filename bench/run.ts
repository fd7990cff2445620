/**
 * `npm run bench`: the figures of BENCHMARKS.md, each measured in the same run against the
 * polling design the workflows had before (bench/baseline/). Prints Markdown tables; options:
 *   --only fog|transitions|dead-time   one benchmark
 *   --rounds N                         dead-time rounds of three bookings (default 5)
 */
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { deadTime } from "./dead-time";
import { fogRequests } from "./fog-requests";
import { transitions } from "./transitions";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { values } = parseArgs({
  options: { only: { type: "string" }, rounds: { type: "string", default: "5" } },
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
