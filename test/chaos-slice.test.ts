/**
 * The chaos suite's seeded slice (the full run is `npm run chaos`, scripts/chaos.ts): a dozen
 * bookings on three hosts with faults of every kind between LaaS and each service, three hostile
 * bookings, three changed mid-flight, the listener killed twice, then every invariant of
 * test/chaos/invariants.ts. The seed fixes the plan; the moments faults meet the bookings vary
 * with the machine's speed.
 */
import { describe, expect, it } from "vitest";
import { renderReport } from "./chaos/report";
import { runChaos } from "./chaos/run";

// A seed whose dozen bookings hold a NUL, escape sequences and a user name made of shell
// metacharacters, a user without an address and one not named, and a booking cancelled, one
// shortened and one extended mid-flight (test/chaos/plan.ts draws them from it).
const SEED = 15;

describe("chaos slice", () => {
  it(`seed ${SEED}: 12 bookings under faults of every kind end as they must`, async () => {
    const result = await runChaos({
      seed: SEED,
      bookings: 12,
      hosts: 3,
      kills: 2,
      faultsPerKind: 1,
      hostileShare: 0.25,
      midFlightShare: 0.35,
      settleTimeoutMs: 90_000,
    });
    const report = renderReport(result, "npx vitest run test/chaos-slice.test.ts");
    // Every kind of fault was put in place (whether a window met a request depends on timing).
    for (const [kind, windows] of Object.entries(result.counts.windows)) {
      expect(windows, `${kind} windows\n${report}`).toBeGreaterThan(0);
    }
    const failed = result.judged.checks.filter((c) => !c.ok);
    expect(
      failed.map((c) => c.name),
      report,
    ).toEqual([]);
  }, 300_000);
});
