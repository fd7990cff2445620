/**
 * What the lab's operators are mailed: a failure (the whole error), a host quarantined, a
 * hand-over that gave up. One message per event: each is a step record of the run it belongs to
 * (checkpoints.ts once), so a step run again after a restart does not send it twice. A mail
 * that cannot be sent never costs the event its record: it is logged, and tried again only
 * should the step run again. Whether the operators were told is read back from these records
 * (the dashboard's failure note says so only when they were).
 */

import type { Booking } from "../domain/booking";
import type { Host } from "../domain/host";
import { errorMessage } from "../errors";
import {
  type RenderedText,
  renderFailureReport,
  renderHandoverNotice,
  renderOperatorNotice,
} from "../handover/message";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { settledWithin } from "../time";
import { once } from "./checkpoints";
import { FAILURE_MAIL, recordedFailure } from "./failure-record";
import { hasStatusNote, statusNoteFor } from "./status-notes";

/** Step keys of the operators' mails, by event. */
export const OPERATOR_MAILS = {
  failure: FAILURE_MAIL,
  quarantine: "mailQuarantine",
  undelivered: "mailUndelivered",
} as const;

/**
 * How long a step waits for an operators' mail. RecordFailure has 60 s (TimeoutSeconds) and is
 * retried when it runs past them: a mail server that hangs must not make a recorded failure look
 * unrecorded (FailureNotRecorded) and cost the booking its dashboard note.
 */
const MAIL_WAIT_MS = 20_000;

type MailDeps = Pick<Runtime, "config" | "mailer" | "store" | "logger" | "now">;

/** Whether the lab mails its operators at all (a mailer and at least one operator). */
export function operatorsReachable(rt: Pick<Runtime, "config" | "mailer">): boolean {
  return rt.mailer !== null && (rt.config.handover?.email.operators.length ?? 0) > 0;
}

/**
 * Mails the operators `compose(booking)` once per run and event, waiting at most MAIL_WAIT_MS.
 * Answers whether it is sent (now, or by an earlier run of the step).
 */
export async function tellOperators(
  rt: MailDeps,
  input: PhaseInput,
  key: string,
  compose: (booking: Booking) => RenderedText,
): Promise<boolean> {
  const mailer = rt.mailer;
  const operators = rt.config.handover?.email.operators ?? [];
  if (!mailer || operators.length === 0) return false;
  const log = rt.logger.child({ bookingId: input.bookingId, phase: input.phase, mail: key });
  let sent = false;
  const sending = once(rt, input, key, async (booking) => {
    const message = compose(booking);
    const answer = await mailer.send({ to: operators, ...message });
    log.info({ messageId: answer.messageId, recipients: operators.length }, "operators mailed");
    return { messageId: answer.messageId };
  }).then(
    () => {
      sent = true;
    },
    (error: unknown) => {
      log.error(
        { err: errorMessage(error) },
        "could not mail the operators (the event stays recorded)",
      );
    },
  );
  if (!(await settledWithin(sending, MAIL_WAIT_MS))) {
    log.warn({ waitedMs: MAIL_WAIT_MS }, "the operators' mail is still being sent");
  }
  return sent;
}

/** The failure recorded for the run, with the whole error, to the operators. */
export function mailFailure(rt: MailDeps, input: PhaseInput): Promise<boolean> {
  return tellOperators(rt, input, OPERATOR_MAILS.failure, (booking) => {
    const recorded = recordedFailure(booking, input.phase);
    const stage = input.phase === "provision" ? "failed" : "release-failed";
    return renderFailureReport({
      bookingId: booking.id,
      hostName: booking.hostName,
      phase: input.phase,
      step: recorded?.step ?? "unknown",
      user: booking.user === null ? null : `dashboard user ${booking.user}`,
      installer: booking.installer,
      scenario: booking.scenario,
      host: recorded?.host ?? "unchanged",
      // The note as it will read once this mail is sent.
      note: hasStatusNote(rt, booking)
        ? statusNoteFor(booking, stage, { operatorsTold: true }).content
        : null,
      error: booking.failure ?? "",
      at: rt.now().toISOString(),
    });
  });
}

/** The host went to quarantine: why, and the command that gives it back. */
export function mailQuarantine(rt: MailDeps, input: PhaseInput, host: Host): Promise<boolean> {
  return tellOperators(rt, input, OPERATOR_MAILS.quarantine, (booking) =>
    renderOperatorNotice({
      subject: `LaaS: host ${host.name} quarantined`,
      summary: `Host ${host.name} is quarantined: nothing books it until an operator releases it.`,
      fields: [
        ["Host", host.name],
        ["Booking", booking.id],
        ["Failures", `${host.failures} in a row (quarantine_after: ${rt.config.quarantineAfter})`],
        ["When", rt.now().toISOString()],
      ],
      reason: host.reason ?? "no reason recorded",
      commands: [
        `laas host show ${host.name}`,
        `laas host release ${host.name}   (reimages it clean and returns it to the pool)`,
      ],
    }),
  );
}

/** A hand-over gave up after its retries: the operators are told why and what sends it. */
export function mailUndelivered(rt: MailDeps, input: PhaseInput, reason: string): Promise<boolean> {
  return tellOperators(rt, input, OPERATOR_MAILS.undelivered, (booking) =>
    renderHandoverNotice({
      bookingId: booking.id,
      hostName: booking.hostName,
      user: booking.user === null ? null : `dashboard user ${booking.user}`,
      recipients: [],
      delivered: false,
      problem: reason,
      command: `laas handover ${booking.id}`,
      at: rt.now().toISOString(),
    }),
  );
}
