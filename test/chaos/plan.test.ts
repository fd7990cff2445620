/**
 * A chaos plan follows from its seed alone, and has what the suite promises: faults of every
 * kind, every dashboard endpoint under each dashboard fault, hostile bookings of every kind
 * (given room), bookings changed mid-flight.
 */
import { describe, expect, it } from "vitest";
import { DASHBOARD_ENDPOINTS, FAULT_KINDS, HOSTILE_KINDS, makePlan } from "./plan";
import { Prng } from "./prng";

describe("chaos plan", () => {
  const options = { seed: 42, bookings: 100, hosts: 6, kills: 12, faultsPerKind: 3 };

  it("is the same for the same seed, and another for another seed", () => {
    expect(makePlan(options)).toEqual(makePlan(options));
    expect(makePlan({ ...options, seed: 43 })).not.toEqual(makePlan(options));
  });

  it("has faults of every kind, and each dashboard fault on every endpoint", () => {
    const plan = makePlan(options);
    for (const kind of FAULT_KINDS) {
      expect(
        plan.faults.some((f) => f.kind === kind),
        kind,
      ).toBe(true);
    }
    expect(plan.faults.filter((f) => f.kind === "listener-kill")).toHaveLength(12);
    for (const kind of ["dashboard-500", "dashboard-html", "dashboard-truncated"] as const) {
      const endpoints = new Set(plan.faults.filter((f) => f.kind === kind).map((f) => f.endpoint));
      expect([...endpoints].sort(), kind).toEqual([...DASHBOARD_ENDPOINTS].sort());
    }
    // In time order, inside the run, each window of a sane length.
    const times = plan.faults.map((f) => f.atMs);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(Math.max(...times)).toBeLessThan(plan.faultsEndMs);
    for (const fault of plan.faults) expect(fault.durationMs).toBeGreaterThan(0);
  });

  it("has hostile bookings of every kind and bookings changed mid-flight", () => {
    const plan = makePlan(options);
    const hostile = new Set(plan.bookings.map((b) => b.hostile).filter(Boolean));
    expect([...hostile].sort()).toEqual([...HOSTILE_KINDS].sort());
    expect(plan.bookings[0]!.hostile).toBeNull();
    const actions = new Set(plan.bookings.map((b) => b.midFlight?.action).filter(Boolean));
    expect([...actions].sort()).toEqual(["cancel", "extend", "shorten"]);
    const nul = plan.bookings.find((b) => b.hostile === "nul-scenario");
    expect(nul?.scenario).toContain("\u0000");
    // Bookings are spread over the hosts in turn.
    expect(new Set(plan.bookings.map((b) => b.hostIndex)).size).toBe(6);
  });

  it("draws from independent named streams", () => {
    const a = new Prng(7, "one");
    const b = new Prng(7, "two");
    const again = new Prng(7, "one");
    const draws = (p: Prng) => Array.from({ length: 5 }, () => p.next());
    const first = draws(a);
    expect(draws(again)).toEqual(first);
    expect(draws(b)).not.toEqual(first);
    for (const x of first) expect(x >= 0 && x < 1).toBe(true);
  });
});
