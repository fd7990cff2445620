/**
 * Which step of a run failed, and with which error name: kept in the run's record next to the
 * whole error (booking.failure), so that what the public sees can be chosen from the kind of
 * failure alone (status-notes.ts) and what the operators see can name the step.
 *
 * The step is read off what the run recorded when RecordFailure runs (before the failure clears
 * the booking's wait): the wait it was in, or the step after the last one that finished. Steps
 * that keep no record of their own (CreateVpnUser, and SetHostAccess when it has nothing to do)
 * are told apart by the error where they can be, and named together where they cannot.
 */
import type { HandoverConfig } from "../config/types";
import type { Booking, Phase } from "../domain/booking";
import type { JsonObject, WaitEvent } from "../domain/run";
import type { PhaseInput } from "../ports/engine";
import { doneResult, stepRecord } from "./checkpoints";
import { START_IMAGING } from "./imaging";
import { START_INSTALLER } from "./installer";
import { waitKey } from "./waits";

/** The key of the record RecordFailure leaves in the run. */
export const FAILURE_RECORD = "recordFailure";

/** The key of the run's record of the failure mailed to the operators (operator-mail.ts). */
export const FAILURE_MAIL = "mailFailure";

export interface FailureRecord extends JsonObject {
  /** The workflow state that failed, as the ASL names it ("AwaitInstaller"…). */
  step: string;
  /** The error's name as the workflow caught it ("InstallerFailed", "States.Timeout"…). */
  error: string;
  /** What became of the host: "free", "cleaning", "quarantined" or "unchanged". */
  host: string;
  /** For a booking refused at poll (step "Poll"): the dashboard field it was refused for. */
  field: string | null;
}

/** Step records the provision steps leave (pod.ts, access.ts use these keys). */
const BUILD_POD = "buildPod";
const REMOVE_POD = "removePod";
const SET_HOST_ACCESS = "setHostAccess";

const AWAIT_STEP: Record<WaitEvent, string> = {
  imaged: "AwaitImaging",
  "host-up": "AwaitHost",
  "installer-done": "AwaitInstaller",
};

/** Errors only the directory raises (lib/adapters/ldap/errors.ts): CreateVpnUser's. */
const DIRECTORY_ERRORS = new Set(["DirectoryError", "InvalidUserName"]);
/** Errors of a step on the host: SetHostAccess's, never CreateVpnUser's. */
const HOST_ERRORS = new Set([
  "CommandFailed",
  "CommandTimeout",
  "HostUnreachable",
  "HostIdentity",
  "InvalidCredential",
]);
/** RemovePod passes these on to the clean imaging rather than failing the release. */
const REMOVE_POD_PASSES = new Set(["HostUnreachable", "TransientError"]);

/** The step of run `input` that failed with `errorName`, from what the run recorded. */
export function failedStep(
  booking: Booking,
  input: PhaseInput,
  errorName: string,
  handover: HandoverConfig | null,
): string {
  const done = (key: string) => doneResult(booking, input, key) !== undefined;
  const wait = booking.wait;
  if (
    wait &&
    wait.phase === input.phase &&
    wait.generation === input.generation &&
    !done(waitKey(wait.event))
  ) {
    return AWAIT_STEP[wait.event];
  }
  if (input.phase === "release") {
    if (done(waitKey("imaged"))) return "MarkReleased";
    if (done(START_IMAGING)) return "AwaitImaging";
    if (done(REMOVE_POD) || REMOVE_POD_PASSES.has(errorName)) return "StartCleanImaging";
    return "RemovePod";
  }
  const order: [string, string][] = [
    [START_IMAGING, "StartImaging"],
    [waitKey("imaged"), "AwaitImaging"],
    [waitKey("host-up"), "AwaitHost"],
    [BUILD_POD, "BuildPod"],
    [START_INSTALLER, "StartInstaller"],
    [waitKey("installer-done"), "AwaitInstaller"],
  ];
  for (const [key, step] of order) if (!done(key)) return step;
  if (done(SET_HOST_ACCESS)) return "MarkReady";
  const access: string[] = [];
  if (handover?.vpn) access.push("CreateVpnUser");
  if (handover && (handover.rootPassword || handover.sshKey)) access.push("SetHostAccess");
  if (access.length === 0) return "MarkReady";
  if (access.length === 2) {
    if (DIRECTORY_ERRORS.has(errorName)) return "CreateVpnUser";
    if (HOST_ERRORS.has(errorName)) return "SetHostAccess";
  }
  return access.join(" or ");
}

/** The failure RecordFailure recorded for the booking's current run of `phase`, if it did. */
export function recordedFailure(booking: Booking, phase: Phase): FailureRecord | null {
  const generation =
    phase === "provision" ? booking.provisionGeneration : booking.releaseGeneration;
  const record = stepRecord(booking, phase, generation, FAILURE_RECORD);
  const result = record?.done ? record.result : null;
  if (typeof result !== "object" || result === null || Array.isArray(result)) return null;
  const { step, error, host, field } = result;
  if (typeof step !== "string" || typeof error !== "string" || typeof host !== "string") {
    return null;
  }
  return { step, error, host, field: typeof field === "string" ? field : null };
}
