/**
 * Status notes on the dashboard (`POST /api/resource_status/`) at each stage of a booking: what
 * the dashboard's users — anyone who can read it — see on the resource's page. Notes never carry
 * secrets, and a failure's note never carries its error: remote stderr, installer logs, internal
 * addresses and directory names stay with the operators (the booking's log, `laas status`, the
 * operators' mail). The note gives a short reason chosen from the kind of failure alone: the
 * step that failed and the error's name (failure-record.ts).
 */

import { type Booking, isManual, type Phase } from "../domain/booking";
import type { StatusNote } from "../ports/dashboard";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { once, stepRecord } from "./checkpoints";
import { FAILURE_MAIL, type FailureRecord, recordedFailure } from "./failure-record";

export const NOTE_STAGES = ["started", "ready", "failed", "released", "release-failed"] as const;
export type NoteStage = (typeof NOTE_STAGES)[number];

export interface StatusNoteInput extends PhaseInput {
  stage: NoteStage;
}

function installerText(booking: Booking): string {
  const installer = booking.installer ?? "no installer";
  return booking.scenario ? `${installer}, scenario ${booking.scenario}` : installer;
}

/** What the public is told when no reason can be chosen. */
export const GENERIC_REASON = "a step of the lab's automation failed";

/** Reasons by step (the workflow's state names; see failure-record.ts). */
const STEP_REASONS: Record<string, string> = {
  StartImaging: "imaging could not be started",
  StartCleanImaging: "imaging could not be started",
  AwaitImaging: "imaging did not complete",
  AwaitHost: "the host did not come up",
  BuildPod: "the pod could not be built",
  StartInstaller: "the installer could not be started",
  AwaitInstaller: "the installer failed",
  CreateVpnUser: "access could not be set up",
  SetHostAccess: "access could not be set up",
  "CreateVpnUser or SetHostAccess": "access could not be set up",
  RemovePod: "the pod could not be removed",
};

/** Reasons by error name, for a step that says nothing of its own (MarkReady, MarkReleased). */
const ERROR_REASONS: Record<string, string> = {
  ImagingFailed: "imaging did not complete",
  HostUnreachable: "the host did not come up",
  InstallerFailed: "the installer failed",
};

/**
 * The short, safe reason the public is given for a failure: chosen from its kind, never taken
 * from its text.
 */
export function publicReason(record: FailureRecord | null): string {
  if (!record) return GENERIC_REASON;
  // Refused at poll: the field can be named (it is the dashboard's own), never its value.
  if (record.error === "InvalidBooking") {
    return `the booking's ${record.field ?? "fields"} cannot be served by this lab`;
  }
  // The lab cannot serve this booking as configured (an installer it does not have, a host
  // missing from the inventory…): the same for whichever step found it.
  if (record.error === "ConfigError") return "the lab is not set up for this booking";
  if (record.step === "AwaitImaging" && /Timeout$/.test(record.error)) {
    return "imaging did not finish in time";
  }
  return STEP_REASONS[record.step] ?? ERROR_REASONS[record.error] ?? GENERIC_REASON;
}

/** Whether the operators were mailed the failure of the booking's current run of `phase`. */
function failureMailed(booking: Booking, phase: Phase): boolean {
  const generation =
    phase === "provision" ? booking.provisionGeneration : booking.releaseGeneration;
  return stepRecord(booking, phase, generation, FAILURE_MAIL)?.done === true;
}

function operatorsLine(told: boolean): string {
  return told
    ? "The lab's operators have been told."
    : "The lab's operators can see the details in its records.";
}

/**
 * The note for a stage, from the booking as stored (a failure by its kind, see publicReason).
 * A failure's note says the operators were told only when their mail went out, unless the caller
 * says how it stands (`operatorsTold`, for the note quoted in that very mail).
 */
export function statusNoteFor(
  booking: Booking,
  stage: NoteStage,
  options: { operatorsTold?: boolean } = {},
): StatusNote {
  const base = { resourceId: booking.resourceId };
  const title = `Booking ${booking.id}`;
  switch (stage) {
    case "started":
      return {
        ...base,
        type: "info",
        title: `${title}: provisioning`,
        content: `Imaging ${booking.hostName} and building its pod (${installerText(booking)}); booked until ${booking.end}.`,
      };
    case "ready":
      return {
        ...base,
        type: "info",
        title: `${title}: ready`,
        content: `${booking.hostName} is ready (${installerText(booking)}) until ${booking.end}. Access details go to the booking user by e-mail.`,
      };
    case "failed":
      return {
        ...base,
        type: "error",
        title: `${title}: provisioning failed`,
        content: `${booking.hostName} could not be provisioned: ${publicReason(recordedFailure(booking, "provision"))}. ${operatorsLine(options.operatorsTold ?? failureMailed(booking, "provision"))}`,
      };
    case "released":
      return {
        ...base,
        type: "info",
        title: `${title}: released`,
        content: `The booking ended: its pod and VPN account are removed and ${booking.hostName} is reimaged.`,
      };
    case "release-failed": {
      const record = recordedFailure(booking, "release");
      const next =
        record?.host === "cleaning"
          ? "The lab cleans it again before it is booked."
          : "It stays out of service until an operator releases it.";
      return {
        ...base,
        type: "warning",
        title: `${title}: release failed`,
        content: `${booking.hostName} could not be cleaned up: ${publicReason(record)}. ${next} ${operatorsLine(options.operatorsTold ?? failureMailed(booking, "release"))}`,
      };
    }
  }
}

type NoteResult = { posted: true } | { posted: false; skipped: string };

/** Whether the booking gets status notes: notes are on and it is a dashboard booking. */
export function hasStatusNote(rt: Pick<Runtime, "config">, booking: Booking): boolean {
  return (
    rt.config.handover?.dashboardNotes === true &&
    !isManual(booking.id) &&
    booking.resourceId !== ""
  );
}

/** Posts the stage's note once per run (run again, it answers what it did). */
export async function postStatus(
  rt: Pick<Runtime, "config" | "dashboard" | "store" | "logger" | "now">,
  input: StatusNoteInput,
): Promise<NoteResult> {
  if (!rt.config.handover?.dashboardNotes) return { posted: false, skipped: "notes are off" };
  return once(rt, input, `postStatus:${input.stage}`, async (booking): Promise<NoteResult> => {
    if (isManual(booking.id) || booking.resourceId === "") {
      return { posted: false, skipped: "not a dashboard booking" };
    }
    // The cleaning after a failed provision: the booking's note is its failure, posted already.
    if (input.stage === "released" && booking.state === "failed") {
      return { posted: false, skipped: "the booking failed; its host was cleaned" };
    }
    await rt.dashboard.postStatusNote(statusNoteFor(booking, input.stage));
    rt.logger.info({ bookingId: booking.id, stage: input.stage }, "status note posted");
    return { posted: true };
  });
}
