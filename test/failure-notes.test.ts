/**
 * The failed step read off a run's record, and the public reason chosen from it: every step of
 * both workflows maps to its reason, and a note never quotes the recorded error, whatever it
 * holds. (test/failure-report.test.ts drives real failures through the workflow.)
 */
import { describe, expect, it } from "vitest";
import type { HandoverConfig } from "../lib/config/types";
import type { Booking, Phase } from "../lib/domain/booking";
import type { WaitEvent } from "../lib/domain/run";
import { allOf, recordDone } from "../lib/lifecycle/checkpoints";
import {
  FAILURE_MAIL,
  FAILURE_RECORD,
  failedStep,
  recordedFailure,
} from "../lib/lifecycle/failure-record";
import { GENERIC_REASON, publicReason, statusNoteFor } from "../lib/lifecycle/status-notes";
import { beginProvisioning, beginReleasing, newBooking } from "../lib/lifecycle/transitions";
import { registerWait, waitKey } from "../lib/lifecycle/waits";
import { Secret } from "../lib/secret";
import { dashboardBooking } from "./helpers/bookings";

const handover = {
  sealingKey: new Secret("x"),
  vpn: true,
  rootPassword: true,
  sshKey: true,
  dashboardNotes: true,
} as HandoverConfig;

const AT = new Date("2030-01-01T00:00:00Z");

function booking(phase: Phase): Booking {
  const made = newBooking(dashboardBooking({ id: "7", hostName: "pod1" }), AT);
  const provisioning = beginProvisioning(made)!;
  return phase === "provision" ? provisioning : beginReleasing(provisioning)!;
}

function input(phase: Phase) {
  return { bookingId: "7", hostName: "pod1", phase, generation: 1 } as const;
}

/** The booking with the given steps of its run done, and waiting for `waiting` if given. */
function runAfter(phase: Phase, done: string[], waiting?: WaitEvent): Booking {
  const steps = done.map((key) => recordDone(input(phase), key, {}, AT));
  const wait = waiting ? [registerWait(input(phase), waiting, "token", AT, AT)] : [];
  return allOf(...steps, ...wait)(booking(phase)) ?? booking(phase);
}

const imaged = ["startImaging", waitKey("imaged")];
const up = [...imaged, waitKey("host-up")];
const installed = [...up, "buildPod", "startInstaller", waitKey("installer-done")];

describe("failedStep", () => {
  it("names each provision step from what the run recorded", () => {
    const cases: [string[], WaitEvent | undefined, string, string][] = [
      [[], undefined, "ConfigError", "StartImaging"],
      [["startImaging"], "imaged", "ImagingFailed", "AwaitImaging"],
      [imaged, "host-up", "HostUnreachable", "AwaitHost"],
      [up, undefined, "CommandFailed", "BuildPod"],
      [[...up, "buildPod"], undefined, "CommandFailed", "StartInstaller"],
      [
        [...up, "buildPod", "startInstaller"],
        "installer-done",
        "InstallerFailed",
        "AwaitInstaller",
      ],
      [installed, undefined, "DirectoryError", "CreateVpnUser"],
      [installed, undefined, "CommandFailed", "SetHostAccess"],
      [installed, undefined, "AuthError", "CreateVpnUser or SetHostAccess"],
      [[...installed, "setHostAccess"], undefined, "Conflict", "MarkReady"],
    ];
    for (const [done, waiting, error, step] of cases) {
      expect(
        failedStep(runAfter("provision", done, waiting), input("provision"), error, handover),
        step,
      ).toBe(step);
    }
    // Without access to set up, a failure after the installer is MarkReady's.
    expect(failedStep(runAfter("provision", installed), input("provision"), "Conflict", null)).toBe(
      "MarkReady",
    );
  });

  it("names each release step, RemovePod only for what it does not pass on", () => {
    const release = (done: string[], error: string, waiting?: WaitEvent) =>
      failedStep(runAfter("release", done, waiting), input("release"), error, handover);
    expect(release([], "CommandFailed")).toBe("RemovePod");
    expect(release([], "HostUnreachable")).toBe("StartCleanImaging");
    expect(release(["removePod"], "ConfigError")).toBe("StartCleanImaging");
    expect(release(["removePod", "startImaging"], "ImagingFailed", "imaged")).toBe("AwaitImaging");
    expect(release(["removePod", "startImaging", waitKey("imaged")], "Conflict")).toBe(
      "MarkReleased",
    );
  });
});

describe("the failure's public note", () => {
  /** A failed booking whose error names every kind of internal detail. */
  function failedAt(phase: Phase, step: string, error: string): Booking {
    const failure = `${error}: LDAP add of "uid=jdoe,ou=People,dc=lab" on ldap://10.1.2.3:389 failed; stderr: Permission denied (publickey) from 192.168.0.7`;
    const record = recordDone(
      input(phase),
      FAILURE_RECORD,
      { step, error, host: "quarantined", field: null },
      AT,
    );
    return { ...record(booking(phase))!, state: "failed", failure };
  }

  it("gives each step's reason and nothing of the error", () => {
    const reasons: [Phase, string, string, string][] = [
      ["provision", "StartImaging", "NotFoundError", "imaging could not be started"],
      ["provision", "AwaitImaging", "ImagingFailed", "imaging did not complete"],
      ["provision", "AwaitImaging", "States.Timeout", "imaging did not finish in time"],
      ["provision", "AwaitHost", "HostUnreachable", "the host did not come up"],
      ["provision", "BuildPod", "CommandFailed", "the pod could not be built"],
      ["provision", "StartInstaller", "CommandFailed", "the installer could not be started"],
      ["provision", "AwaitInstaller", "InstallerFailed", "the installer failed"],
      ["provision", "CreateVpnUser", "DirectoryError", "access could not be set up"],
      ["provision", "CreateVpnUser or SetHostAccess", "AuthError", "access could not be set up"],
      ["provision", "StartImaging", "ConfigError", "the lab is not set up for this booking"],
      ["provision", "MarkReady", "Conflict", GENERIC_REASON],
      ["release", "RemovePod", "CommandFailed", "the pod could not be removed"],
      ["release", "StartCleanImaging", "TransientError", "imaging could not be started"],
      ["release", "MarkReleased", "ImagingFailed", "imaging did not complete"],
    ];
    for (const [phase, step, error, reason] of reasons) {
      const failed = failedAt(phase, step, error);
      const note = statusNoteFor(failed, phase === "provision" ? "failed" : "release-failed");
      expect(recordedFailure(failed, phase)).toEqual({
        step,
        error,
        host: "quarantined",
        field: null,
      });
      expect(note.content, `${step} ${error}`).toContain(`: ${reason}. `);
      for (const internal of ["uid=", "ldap://", "10.1.2.3", "192.168", "stderr", error]) {
        expect(`${note.title} ${note.content}`, `${step} ${error}`).not.toContain(internal);
      }
    }
  });

  it("falls back to a generic reason when no failure was recorded for the run", () => {
    expect(publicReason(null)).toBe(GENERIC_REASON);
    const bare = {
      ...booking("provision"),
      state: "failed" as const,
      failure: "ProtocolError: 10.0.0.1",
    };
    expect(statusNoteFor(bare, "failed").content).toBe(
      `pod1 could not be provisioned: ${GENERIC_REASON}. The lab's operators can see the details in its records.`,
    );
  });

  it("says the operators were told only when their mail went out", () => {
    const failed = failedAt("provision", "AwaitInstaller", "InstallerFailed");
    expect(statusNoteFor(failed, "failed").content).toMatch(
      /can see the details in its records\.$/,
    );
    const mailed = recordDone(
      { bookingId: "7", hostName: "pod1", phase: "provision", generation: 1 },
      FAILURE_MAIL,
      { messageId: "<1@lab>" },
      AT,
    )(failed);
    expect(statusNoteFor(mailed!, "failed").content).toMatch(/have been told\.$/);
  });

  it("names the field a booking was refused for, never its value", () => {
    const refused = recordDone(
      { bookingId: "7", hostName: "pod1", phase: "provision", generation: 0 },
      FAILURE_RECORD,
      { step: "Poll", error: "InvalidBooking", host: "free", field: "scenario_name" },
      AT,
    )({ ...booking("provision"), provisionGeneration: 0, state: "failed" as const });
    expect(statusNoteFor(refused!, "failed").content).toContain(
      "could not be provisioned: the booking's scenario_name cannot be served by this lab.",
    );
  });
});
