/**
 * The pure changes behind steps that never redo finished work, waits that keep their deadline
 * and their outcome, and host keys tied to the deploy they belong to: tables of cases, each
 * including those that must change nothing.
 */
import { describe, expect, it } from "vitest";
import type { Booking } from "../lib/domain/booking";
import { newHost } from "../lib/domain/host";
import type { WaitRecord } from "../lib/domain/run";
import {
  allOf,
  doneResult,
  intentOf,
  recordDone,
  recordIntent,
} from "../lib/lifecycle/checkpoints";
import {
  beginProvisioning,
  beginReleasing,
  newBooking,
  observeDeployed,
  recordHostKey,
} from "../lib/lifecycle/transitions";
import { markAnswered, recordOutcome, registerWait, waitOf } from "../lib/lifecycle/waits";

const T0 = new Date("2026-12-01T10:00:00.000Z");
const T1 = new Date("2026-12-01T10:05:00.000Z");
const PROVISION = { bookingId: "9", hostName: "pod1", phase: "provision", generation: 1 } as const;
const RELEASE = { ...PROVISION, phase: "release" } as const;

function provisioning(): Booking {
  const booking = newBooking(
    {
      id: "9",
      resourceId: "50",
      hostName: "pod1",
      start: T0,
      end: new Date("2026-12-02T10:00:00.000Z"),
      installer: "Fuel",
      scenario: null,
      purpose: "test",
      user: null,
    },
    T0,
  );
  return beginProvisioning(booking) ?? booking;
}

function apply(booking: Booking, change: (b: Booking) => Booking | null): Booking {
  return change(booking) ?? booking;
}

describe("step records", () => {
  it("keep an intent, then the result; a rerun finds the result", () => {
    let b = provisioning();
    expect(doneResult(b, PROVISION, "startImaging")).toBeUndefined();
    b = apply(b, recordIntent(PROVISION, "startImaging", { deployRequested: true }, T0));
    expect(intentOf(b, PROVISION, "startImaging")).toEqual({ deployRequested: true });
    expect(doneResult(b, PROVISION, "startImaging")).toBeUndefined();
    b = apply(b, recordIntent(PROVISION, "startImaging", { rebootRequested: true }, T0));
    b = apply(b, recordDone(PROVISION, "startImaging", { fogHostId: "3" }, T1));
    expect(doneResult(b, PROVISION, "startImaging")).toEqual({ fogHostId: "3" });
    // The intents stay beside the result.
    expect(intentOf(b, PROVISION, "startImaging")).toEqual({
      deployRequested: true,
      rebootRequested: true,
    });
    expect(b.run?.steps.startImaging?.at).toBe(T1.toISOString());
  });

  it("belong to their run: another phase or generation sees none", () => {
    const b = apply(provisioning(), recordDone(PROVISION, "buildPod", { macs: {} }, T0));
    expect(doneResult(b, { ...PROVISION, generation: 2 }, "buildPod")).toBeUndefined();
    expect(doneResult(b, RELEASE, "buildPod")).toBeUndefined();
    expect(intentOf(b, RELEASE, "buildPod")).toEqual({});
  });

  it("start afresh for a later run, and are never written back by an earlier one", () => {
    let b = apply(provisioning(), recordDone(PROVISION, "buildPod", { macs: {} }, T0));
    b = apply(b, beginReleasing);
    b = apply(b, recordDone(RELEASE, "removePod", { removed: 4 }, T1));
    expect(b.run).toMatchObject({ phase: "release", generation: 1 });
    expect(Object.keys(b.run?.steps ?? {})).toEqual(["removePod"]);
    // A provision step still at work when the release began: its record is not written.
    expect(recordDone(PROVISION, "setHostAccess", { done: true }, T1)(b)).toBeNull();
    expect(recordIntent(PROVISION, "startInstaller", { launched: true }, T1)(b)).toBeNull();
  });

  it("combine with other changes in one write; allOf is null when none applies", () => {
    const b = provisioning();
    const none = allOf<Booking>(
      () => null,
      () => null,
    );
    expect(none(b)).toBeNull();
    const both = allOf<Booking>(
      (x) => ({ ...x, progress: "imaged" }),
      recordDone(PROVISION, "await:imaged", { deployed: "d" }, T0),
    )(b);
    expect(both?.progress).toBe("imaged");
    expect(both && doneResult(both, PROVISION, "await:imaged")).toEqual({ deployed: "d" });
  });
});

describe("waits", () => {
  const deadline = new Date("2026-12-01T11:00:00.000Z");

  it("register a token under the run, and keep the first deadline when registered again", () => {
    let b = apply(provisioning(), registerWait(PROVISION, "imaged", "t1", T0, deadline));
    expect(waitOf(b, PROVISION, "imaged")).toMatchObject({
      token: "t1",
      since: T0.toISOString(),
      deadline: deadline.toISOString(),
      outcome: null,
      answeredAt: null,
    });
    b = apply(b, registerWait(PROVISION, "imaged", "t2", T1, new Date("2026-12-01T12:00:00Z")));
    expect(waitOf(b, PROVISION, "imaged")).toMatchObject({
      token: "t2",
      since: T0.toISOString(),
      deadline: deadline.toISOString(),
    });
    // The next wait of the run has a deadline of its own.
    b = apply(b, registerWait(PROVISION, "host-up", "t3", T1, deadline));
    expect(waitOf(b, PROVISION, "host-up")?.since).toBe(T1.toISOString());
    expect(waitOf(b, PROVISION, "imaged")).toBeNull();
  });

  it("are not registered again over an outcome the watcher recorded (it is answered instead)", () => {
    const b = apply(provisioning(), registerWait(PROVISION, "imaged", "t1", T0, deadline));
    const found = apply(
      b,
      recordOutcome(b.wait as WaitRecord, { ok: false, error: "ImagingFailed", cause: "x" }, T1),
    );
    expect(registerWait(PROVISION, "imaged", "t2", T1, deadline)(found)).toBeNull();
    // Another wait of the run is registered as usual.
    expect(registerWait(PROVISION, "host-up", "t3", T1, deadline)(found)?.wait?.token).toBe("t3");
  });

  it("are not registered for a run that is no longer current", () => {
    const released = apply(provisioning(), beginReleasing);
    expect(registerWait(PROVISION, "imaged", "t1", T0, deadline)(released)).toBeNull();
  });

  it("record an outcome for the live token only, once, then are marked answered", () => {
    const b = apply(provisioning(), registerWait(PROVISION, "imaged", "t1", T0, deadline));
    const wait = b.wait as WaitRecord;
    const ok = { ok: true as const, result: { deployed: "d" } };
    const found = apply(b, recordOutcome(wait, ok, T1));
    expect(found.wait?.outcome).toEqual(ok);
    // The success completes the wait's step too: a wait run again answers it at once.
    expect(doneResult(found, PROVISION, "await:imaged")).toEqual({ deployed: "d" });
    // Once only; and not for a token that was replaced meanwhile.
    expect(recordOutcome(wait, ok, T1)(found)).toBeNull();
    const replaced = apply(b, registerWait(PROVISION, "imaged", "t2", T1, deadline));
    expect(recordOutcome(wait, ok, T1)(replaced)).toBeNull();
    // A failure is recorded without completing the step.
    const failure = { ok: false as const, error: "ImagingFailed", cause: "cancelled" };
    const failed = apply(b, recordOutcome(wait, failure, T1));
    expect(failed.wait?.outcome).toEqual(failure);
    expect(doneResult(failed, PROVISION, "await:imaged")).toBeUndefined();
    // Answered: marked for that token only, once.
    const answered = apply(found, markAnswered("t1", T1));
    expect(answered.wait?.answeredAt).toBe(T1.toISOString());
    expect(markAnswered("t1", T1)(answered)).toBeNull();
    expect(markAnswered("t9", T1)(found)).toBeNull();
  });
});

describe("host keys across deploys", () => {
  const host = () => newHost("pod1", { id: "3", mac: null, deployed: "2026-11-30 09:00:00" });

  it("record the key with the deploy it belongs to, and require it while FOG says the same", () => {
    let h = host();
    h = recordHostKey("SHA256:old")(h) ?? h;
    expect(h).toMatchObject({ hostKey: "SHA256:old", hostKeyDeployed: "2026-11-30 09:00:00" });
    expect(recordHostKey("SHA256:old")(h)).toBeNull();
    // FOG still reports that deploy: nothing changes, the key stays required.
    expect(observeDeployed("2026-11-30 09:00:00")(h)).toBeNull();
  });

  it("forget a key once FOG has completed a deploy since it was recorded", () => {
    let h = recordHostKey("SHA256:old")(host()) ?? host();
    h = observeDeployed("2026-12-01 10:30:00")(h) ?? h;
    expect(h).toMatchObject({
      deployed: "2026-12-01 10:30:00",
      hostKey: null,
      hostKeyDeployed: null,
    });
    // The first key seen from now on belongs to the new deploy.
    h = recordHostKey("SHA256:new")(h) ?? h;
    expect(h).toMatchObject({ hostKey: "SHA256:new", hostKeyDeployed: "2026-12-01 10:30:00" });
  });

  it("treat a key recorded without its deploy (an older store) as stale", () => {
    const legacy = { ...host(), hostKey: "SHA256:legacy", hostKeyDeployed: null };
    expect(observeDeployed("2026-11-30 09:00:00")(legacy)).toMatchObject({ hostKey: null });
  });
});
