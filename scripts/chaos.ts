/**
 * `npm run chaos`: the full chaos run (test/chaos/): bookings against the simulated lab with
 * faults injected between LaaS and every service, the listener killed and started again, then
 * the invariants judged. Prints the figures and each invariant as Markdown (RELIABILITY.md,
 * "Chaos"); exits 1 when an invariant failed.
 *
 *   npm run chaos -- --seed 1 --bookings 100 [--hosts 6] [--kills 12] [--faults-per-kind 3]
 *                    [--out report.md] [--keep]
 *
 * --out also writes every booking's plan, times and outcome; --keep leaves the lab's work folder
 * (config, store, the listener's log) behind.
 */
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";

// The simulated lab runs on the shipped example secrets, which LaaS refuses outside the demo and
// the tests; set before the listener's environment is taken (listener-process.ts, at import).
process.env.LAAS_ALLOW_EXAMPLE_SECRETS = "1";
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const { values } = parseArgs({
  options: {
    seed: { type: "string", default: "1" },
    bookings: { type: "string", default: "100" },
    hosts: { type: "string", default: "6" },
    kills: { type: "string" },
    "faults-per-kind": { type: "string", default: "3" },
    out: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const integer = (name: string, text: string | undefined): number => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`--${name} must be a whole number, not ${JSON.stringify(text)}\n`);
    process.exit(2);
  }
  return value;
};
const seed = integer("seed", values.seed);
const bookings = integer("bookings", values.bookings);
const hosts = Math.max(3, integer("hosts", values.hosts));

const { runChaos } = await import("../test/chaos/run");
const { renderBookings, renderReport } = await import("../test/chaos/report");
const result = await runChaos({
  seed,
  bookings,
  hosts,
  kills:
    values.kills === undefined
      ? Math.max(2, Math.round(bookings / 8))
      : integer("kills", values.kills),
  faultsPerKind: integer("faults-per-kind", values["faults-per-kind"]),
  log: (line) => process.stderr.write(`${line}\n`),
  keepWorkDir: values.keep,
});
const report = renderReport(result);
process.stdout.write(`${report}\n`);
// The file also lists every booking: plan, times, outcome.
if (values.out) await writeFile(values.out, `${report}\n\n${renderBookings(result)}\n`);
if (values.keep) process.stderr.write(`the lab's work folder is kept: ${result.workDir}\n`);
process.exit(result.judged.checks.every((c) => c.ok) ? 0 : 1);
