/**
 * Status notes on the dashboard (`POST /api/resource_status/`) at each stage of a booking: what
 * the dashboard's users see on the resource's page. Notes never carry secrets; the credentials go
 * to the booking user alone, in the hand-over message.
 */
import type { Runtime } from "../app/runtime";
import { type Booking, isManual } from "../domain/booking";
import type { StatusNote } from "../ports/dashboard";
import type { PhaseInput } from "../ports/engine";
import { once } from "./checkpoints";

export const NOTE_STAGES = ["started", "ready", "failed", "released", "release-failed"] as const;
export type NoteStage = (typeof NOTE_STAGES)[number];

export interface StatusNoteInput extends PhaseInput {
  stage: NoteStage;
}

function installerText(booking: Booking): string {
  const installer = booking.installer ?? "no installer";
  return booking.scenario ? `${installer}, scenario ${booking.scenario}` : installer;
}

/** The note for a stage, from the booking as stored (its failure reason holds no secrets). */
export function statusNoteFor(booking: Booking, stage: NoteStage): StatusNote {
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
        content: `${booking.hostName} could not be provisioned: ${booking.failure ?? "reason unknown"}. The lab's operators have been told.`,
      };
    case "released":
      return {
        ...base,
        type: "info",
        title: `${title}: released`,
        content: `The booking ended: its pod and VPN account are removed and ${booking.hostName} is reimaged.`,
      };
    case "release-failed":
      return {
        ...base,
        type: "warning",
        title: `${title}: release failed`,
        content: `${booking.hostName} could not be cleaned up: ${booking.failure ?? "reason unknown"}. It stays out of service until an operator looks at it.`,
      };
  }
}

type NoteResult = { posted: true } | { posted: false; skipped: string };

/** Posts the stage's note once per run (run again, it answers what it did). */
export async function postStatus(rt: Runtime, input: StatusNoteInput): Promise<NoteResult> {
  if (!rt.config.handover?.dashboardNotes) return { posted: false, skipped: "notes are off" };
  return once(rt, input, `postStatus:${input.stage}`, async (booking): Promise<NoteResult> => {
    if (isManual(booking.id) || booking.resourceId === "") {
      return { posted: false, skipped: "not a dashboard booking" };
    }
    await rt.dashboard.postStatusNote(statusNoteFor(booking, input.stage));
    rt.logger.info({ bookingId: booking.id, stage: input.stage }, "status note posted");
    return { posted: true };
  });
}
