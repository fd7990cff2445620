/**
 * Booking retention, the pure part: which transitions stamp the expiry and how, the poll's
 * pastRetention rule and its bond with the expiry, and pharos.yaml's `booking_retention_days`.
 * The sweep that deletes expired bookings is in retention-sweep.test.ts.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { loadPharosConfig } from "../lib/config/load";
import { type Booking, manualBookingId } from "../lib/domain/booking";
import { ConfigError } from "../lib/errors";
import { emptyAccess, forgetVpnUser } from "../lib/lifecycle/access-transitions";
import {
  expiryAfterEndMoved,
  expiryOf,
  isExpired,
  pastRetention,
  type Retention,
} from "../lib/lifecycle/retention";
import {
  beginCleaning,
  cancel,
  failPhase,
  finishPhase,
  isFinal,
  newBooking,
  refreshFromDashboard,
  refuseBooking,
  stampExpiry,
} from "../lib/lifecycle/transitions";

const DAY_S = 86_400;
const DAYS = 7;
const END = "2026-03-10T12:00:00.000Z";
const endS = Date.parse(END) / 1000;

function booking(fields: Partial<Booking> = {}): Booking {
  const created = newBooking(
    {
      id: "42",
      resourceId: "7",
      hostName: "pod-1",
      start: new Date("2026-03-01T12:00:00.000Z"),
      end: new Date(END),
      installer: null,
      scenario: null,
      purpose: "test",
      user: null,
    },
    new Date("2026-02-28T12:00:00.000Z"),
  );
  return { ...created, ...fields };
}

const releasing = (fields: Partial<Booking> = {}) =>
  booking({ state: "releasing", provisionGeneration: 1, releaseGeneration: 1, ...fields });
const provisioning = (fields: Partial<Booking> = {}) =>
  booking({ state: "provisioning", provisionGeneration: 1, ...fields });

const before = new Date(Date.parse(END) - 3600_000);
const after = new Date(Date.parse(END) + 2 * DAY_S * 1000);
const at = (now: Date): Retention => ({ now, retentionDays: DAYS });

describe("the transitions that end a booking for good stamp its expiry", () => {
  it.each<[string, () => Booking | null, number | null]>([
    // Ended before its end (vanished, cancelled early): counted from the end.
    [
      "released early",
      () => finishPhase("release", 1, at(before))(releasing()),
      endS + DAYS * DAY_S,
    ],
    // Ended after its end (a long release): counted from when it ended.
    [
      "released late",
      () => finishPhase("release", 1, at(after))(releasing()),
      after.getTime() / 1000 + DAYS * DAY_S,
    ],
    [
      "failed once the cleaning after a failed provision is over",
      () => finishPhase("release", 1, at(before))(releasing({ cleanup: "after-provision" })),
      endS + DAYS * DAY_S,
    ],
    [
      "failed, host never touched or quarantined",
      () => failPhase("provision", 1, "boom", null, at(before))(provisioning()),
      endS + DAYS * DAY_S,
    ],
    [
      "cancelled",
      () => cancel("gone", at(after))(booking()),
      after.getTime() / 1000 + DAYS * DAY_S,
    ],
    [
      "refused",
      () => refuseBooking("no such installer", at(before))(booking()),
      endS + DAYS * DAY_S,
    ],
    // Not ended for good: no expiry.
    ["ready", () => finishPhase("provision", 1, at(before))(provisioning()), null],
    [
      "failed with its host left for cleaning",
      () => failPhase("provision", 1, "boom", "after-provision", at(before))(provisioning()),
      null,
    ],
    [
      "a failed cleaning, the host left for cleaning again",
      () =>
        failPhase(
          "release",
          1,
          "boom",
          "after-release",
          at(before),
        )(releasing({ cleanup: "after-release" })),
      null,
    ],
  ])("%s", (_what, run, expected) => {
    const next = run();
    expect(next).not.toBeNull();
    expect(next?.expiresAtEpochSeconds).toBe(expected);
    expect(isFinal(next as Booking)).toBe(expected !== null);
  });

  it("a release whose VPN entry is still recorded gets its expiry only once the sweep forgot it", () => {
    const dn = "uid=ada,ou=People,dc=lab";
    const access = { ...emptyAccess(), vpnUser: "ada", vpnUserDn: dn, vpnEntryUuid: "u-1" };
    // RevokeAccess failed for good: the booking is released with its entry still on record, and
    // TTL must not delete that record before the sweep has removed the entry.
    const released = finishPhase("release", 1, at(after))(releasing({ access })) as Booking;
    expect(released.state).toBe("released");
    expect(released.expiresAtEpochSeconds).toBeNull();
    expect(isFinal(released)).toBe(false);
    expect(stampExpiry(DAYS)(released)).toBeNull();
    const forgotten = forgetVpnUser(dn)(released) as Booking;
    expect(isFinal(forgotten)).toBe(true);
    expect(stampExpiry(DAYS)(forgotten)?.expiresAtEpochSeconds).toBeGreaterThan(0);
  });

  it("a failed booking whose host is being cleaned gets its expiry only when the cleaning ends", () => {
    const failed = failPhase("provision", 1, "boom", "after-provision", at(before))(provisioning());
    const cleaning = beginCleaning(failed as Booking) as Booking;
    expect(cleaning.expiresAtEpochSeconds).toBeNull();
    const done = finishPhase("release", 1, at(after))(cleaning) as Booking;
    expect(done).toMatchObject({ state: "failed", cleanup: null });
    expect(done.expiresAtEpochSeconds).toBe(after.getTime() / 1000 + DAYS * DAY_S);
  });

  it("a manual booking (no real end) counts from when it ended, not from year 9999", () => {
    const manual = releasing({
      id: manualBookingId("pod-1", before),
      end: "9999-12-31T23:59:59.000Z",
    });
    const released = finishPhase("release", 1, at(after))(manual) as Booking;
    expect(released.expiresAtEpochSeconds).toBe(after.getTime() / 1000 + DAYS * DAY_S);
  });

  it("rounds up to a whole second: never before end + retention", () => {
    const odd = releasing({ end: "2026-03-10T12:00:00.400Z" });
    const released = finishPhase("release", 1, at(before))(odd) as Booking;
    expect(released.expiresAtEpochSeconds).toBe(endS + 1 + DAYS * DAY_S);
  });

  it("refuses a retention that is not a positive number of days", () => {
    for (const days of [0, -1, Number.NaN, undefined as unknown as number]) {
      expect(() => expiryOf(booking(), before, days)).toThrow(/booking_retention_days/);
    }
  });
});

describe("an ended booking whose end moves", () => {
  it("moves its expiry later by as much, and never earlier", () => {
    const ended = {
      ...booking({ state: "cancelled" }),
      expiresAtEpochSeconds: endS + DAYS * DAY_S,
    };
    const later = new Date(Date.parse(END) + 3 * DAY_S * 1000);
    const extended = refreshFromDashboard({ ...dashboardOf(ended), end: later })(ended) as Booking;
    expect(extended.end).toBe(later.toISOString());
    expect(extended.expiresAtEpochSeconds).toBe(endS + 3 * DAY_S + DAYS * DAY_S);
    expect(pastRetention(extended.end, expiredAt(extended), DAYS)).toBe(true);
    const earlier = new Date(Date.parse(END) - DAY_S * 1000);
    const shortened = refreshFromDashboard({ ...dashboardOf(ended), end: earlier })(ended);
    expect(shortened?.expiresAtEpochSeconds).toBe(ended.expiresAtEpochSeconds);
    expect(expiryAfterEndMoved(100, END, END)).toBe(100);
  });

  it("leaves a booking without an expiry without one", () => {
    const scheduled = booking();
    const later = new Date(Date.parse(END) + DAY_S * 1000);
    const moved = refreshFromDashboard({ ...dashboardOf(scheduled), end: later })(scheduled);
    expect(moved?.expiresAtEpochSeconds).toBeNull();
  });
});

describe("the sweep's stamp for bookings that ended without an expiry", () => {
  const lastChange = "2026-03-20T08:00:00.000Z";
  it.each<[string, Partial<Booking>, number | null]>([
    ["released", { state: "released" }, Date.parse(lastChange) / 1000 + DAYS * DAY_S],
    ["cancelled", { state: "cancelled" }, Date.parse(lastChange) / 1000 + DAYS * DAY_S],
    ["failed", { state: "failed" }, Date.parse(lastChange) / 1000 + DAYS * DAY_S],
    ["failed, cleaning pending", { state: "failed", cleanup: "after-provision" }, null],
    ["ready", { state: "ready" }, null],
    ["scheduled", {}, null],
  ])("%s", (_what, fields, expected) => {
    const stamped = stampExpiry(DAYS)(booking({ ...fields, updatedAt: lastChange }));
    expect(stamped?.expiresAtEpochSeconds ?? null).toBe(expected);
  });

  it("counts from the end when the last change was before it", () => {
    const early = booking({ state: "cancelled", updatedAt: before.toISOString() });
    expect(stampExpiry(DAYS)(early)?.expiresAtEpochSeconds).toBe(endS + DAYS * DAY_S);
  });

  it("leaves an expiry already stamped alone", () => {
    expect(stampExpiry(DAYS)(booking({ state: "released", expiresAtEpochSeconds: 5 }))).toBeNull();
  });
});

describe("pastRetention, the poll's rule", () => {
  it("holds once end + retention is strictly past", () => {
    const edge = new Date(Date.parse(END) + DAYS * DAY_S * 1000);
    expect(pastRetention(END, edge, DAYS)).toBe(false);
    expect(pastRetention(END, new Date(edge.getTime() + 1), DAYS)).toBe(true);
    expect(pastRetention(END, before, DAYS)).toBe(false);
    expect(pastRetention(END, new Date(edge.getTime() + 1), DAYS + 1)).toBe(false);
  });

  it("holds for every booking at the first instant it is expired (deleted means skipped)", () => {
    const ends = [END, "2026-03-10T12:00:00.001Z", "2026-03-10T12:00:00.999Z"];
    const endedAts = [before, new Date(END), after, new Date(after.getTime() + 123)];
    for (const end of ends) {
      for (const endedAt of endedAts) {
        for (const transition of [
          (b: Booking) =>
            finishPhase(
              "release",
              1,
              at(endedAt),
            )({
              ...b,
              state: "releasing",
              provisionGeneration: 1,
              releaseGeneration: 1,
            }),
          (b: Booking) => cancel("gone", at(endedAt))(b),
          (b: Booking) =>
            stampExpiry(DAYS)({ ...b, state: "failed", updatedAt: endedAt.toISOString() }),
        ]) {
          const ended = transition(booking({ end })) as Booking;
          const first = expiredAt(ended);
          expect(
            isExpired(ended, new Date(first.getTime() - 1)),
            `${end} ${endedAt.toISOString()}`,
          ).toBe(false);
          expect(isExpired(ended, first)).toBe(true);
          expect(pastRetention(end, first, DAYS), `${end} ${endedAt.toISOString()}`).toBe(true);
        }
      }
    }
  });

  it("an unstamped booking never expires", () => {
    expect(isExpired(booking({ state: "released" }), new Date("9999-01-01T00:00:00Z"))).toBe(false);
  });
});

describe("booking_retention_days in pharos.yaml", () => {
  const REPO = resolve(import.meta.dirname, "..");
  let root: string;
  let pharos: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "laas-retention-"));
    cpSync(join(REPO, "conf"), join(root, "conf"), { recursive: true });
    cpSync(join(REPO, "templates"), join(root, "templates"), { recursive: true });
    pharos = join(root, "conf", "pharos.yaml");
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const set = (value: unknown) => {
    const doc = parseDocument(readFileSync(pharos, "utf8"));
    doc.set("booking_retention_days", value);
    writeFileSync(pharos, String(doc));
  };

  it("defaults to 30 days and takes the lab's own", async () => {
    expect((await loadPharosConfig(pharos)).bookingRetentionDays).toBe(30);
    set(7);
    expect((await loadPharosConfig(pharos)).bookingRetentionDays).toBe(7);
  });

  it.each<[unknown, RegExp]>([
    [0, /booking_retention_days: expected a positive integer/],
    [1.5, /booking_retention_days: expected a positive integer/],
    ["a month", /booking_retention_days: expected a positive integer/],
    [3651, /booking_retention_days: expected at most 3650 days/],
  ])("refuses %j", async (value, message) => {
    set(value);
    const error = await loadPharosConfig(pharos).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(message);
  });
});

/** The first instant the booking counts as expired. */
function expiredAt(booking: Booking): Date {
  return new Date((booking.expiresAtEpochSeconds as number) * 1000 + 1);
}

function dashboardOf(b: Booking) {
  return {
    id: b.id,
    resourceId: b.resourceId,
    hostName: b.hostName,
    start: new Date(b.start),
    end: new Date(b.end),
    installer: b.installer,
    scenario: b.scenario,
    purpose: b.purpose,
    user: b.user,
  };
}
