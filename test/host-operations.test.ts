/**
 * The operator's host changes (lib/lifecycle/host-operations.ts) as tables: what each does, and
 * every case in which it declines (null) — above all a host that moved on since the command
 * looked at it, which must never be changed on the strength of that old look.
 */
import { describe, expect, it } from "vitest";
import { type Host, newHost } from "../lib/domain/host";
import {
  forgetHostKey,
  operatorQuarantine,
  takeOverForRelease,
} from "../lib/lifecycle/host-operations";

const now = new Date("2026-12-01T12:00:00.000Z");
const KEY = "SHA256:S3Kz4SttIGXu3UM8gSKd0ea0Q/nwmRBbwhVNsbcCNrE";

function host(fields: Partial<Host> = {}): Host {
  return { ...newHost("pod1", { id: "3", mac: "52:54:00:00:00:01", deployed: "d1" }), ...fields };
}
const seenOf = (h: Host) => ({ state: h.state, bookingId: h.bookingId });

describe("forgetHostKey", () => {
  it("clears the key and the deploy it belongs to, with an event naming the key", () => {
    const changed = forgetHostKey(now)(host({ hostKey: KEY, hostKeyDeployed: "d1" }));
    expect(changed).toMatchObject({ hostKey: null, hostKeyDeployed: null });
    expect(changed?.history.at(-1)).toMatchObject({
      at: now.toISOString(),
      event: "key forgotten",
      bookingId: null,
    });
    expect(changed?.history.at(-1)?.detail).toContain(KEY);
  });

  it("declines when no key is recorded", () => {
    expect(forgetHostKey(now)(host())).toBeNull();
  });
});

describe("operatorQuarantine", () => {
  it("takes a free host out of service with the operator's reason", () => {
    const free = host();
    const changed = operatorQuarantine("fans", seenOf(free), now)(free);
    expect(changed).toMatchObject({
      state: "quarantined",
      bookingId: null,
      reason: "quarantined by the operator: fans",
    });
    expect(changed?.history.at(-1)).toMatchObject({
      event: "quarantined",
      detail: "by the operator: fans",
    });
  });

  it("takes a host held by a booking that is over, as the command saw it", () => {
    const stuck = host({ state: "cleaning", bookingId: "9" });
    expect(operatorQuarantine("x", seenOf(stuck), now)(stuck)).toMatchObject({
      state: "quarantined",
      bookingId: null,
    });
  });

  it.each<[string, Host, { state: Host["state"]; bookingId: string | null }]>([
    [
      "claimed since the command looked",
      host({ state: "claimed", bookingId: "7" }),
      { state: "free", bookingId: null },
    ],
    [
      "held by another booking since",
      host({ state: "cleaning", bookingId: "8" }),
      { state: "cleaning", bookingId: "9" },
    ],
    [
      "quarantined already",
      host({ state: "quarantined" }),
      { state: "quarantined", bookingId: null },
    ],
  ])("declines a host %s", (_, current, seen) => {
    expect(operatorQuarantine("x", seen, now)(current)).toBeNull();
  });
});

describe("takeOverForRelease", () => {
  it("cleans a quarantined host under the operator's booking: key forgotten, streak cleared", () => {
    const quarantined = host({
      state: "quarantined",
      bookingId: "9",
      reason: "2 failures",
      hostKey: KEY,
      hostKeyDeployed: "d1",
      failures: 2,
    });
    const changed = takeOverForRelease("manual-pod1-1", seenOf(quarantined), now)(quarantined);
    expect(changed).toMatchObject({
      state: "cleaning",
      bookingId: "manual-pod1-1",
      reason: null,
      failures: 0,
      hostKey: null,
      hostKeyDeployed: null,
    });
    expect(changed?.history.map((e) => e.event)).toEqual([
      "key forgotten",
      "release by the operator",
    ]);
    expect(changed?.history.at(-1)?.detail).toContain("failure streak of 2 cleared");
  });

  it("releases a host for its own ready booking (in-use → cleaning)", () => {
    const inUse = host({ state: "in-use", bookingId: "5" });
    expect(takeOverForRelease("5", seenOf(inUse), now)(inUse)).toMatchObject({
      state: "cleaning",
      bookingId: "5",
    });
  });

  it.each<[string, Host, { state: Host["state"]; bookingId: string | null }]>([
    [
      "claimed by poll since it was seen free",
      host({ state: "claimed", bookingId: "7" }),
      { state: "free", bookingId: null },
    ],
    ["released by its own booking since", host(), { state: "in-use", bookingId: "5" }],
    [
      "taken over by another operator's release",
      host({ state: "cleaning", bookingId: "manual-2" }),
      { state: "quarantined", bookingId: "9" },
    ],
  ])("declines a host %s", (_, current, seen) => {
    expect(takeOverForRelease("manual-1", seen, now)(current)).toBeNull();
  });
});
