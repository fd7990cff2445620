/**
 * The notice before the end: a ready booking's user is mailed `handover.end_notice.before_hours`
 * before it ends, once per booking and end. Run by every poll over the bookings it has just read
 * (reconcile's), in memory: only a booking whose notice is due costs a request.
 *
 * The booking records which end its notice was for (Booking.endNotice). A poller claims the notice
 * with a conditional write ("sending") before it looks the user up and sends; two pollers racing
 * decide again on the version the other wrote, and only one sends. An end the dashboard moved (an
 * extension, or a booking shortened) is a new end: it gets its notice once it comes within range.
 *
 * At least once: a claim left "sending" by a poller that stopped before recording the outcome (a
 * crash, a poll's function timed out, a mail server that hung past MAIL_WAIT_MS) is claimed again
 * after END_NOTICE_RETRY_MS, and so is one the mail server did not take ("failed"). The user may
 * then get the notice twice, never none while the booking lasts. No address for the user, or a
 * message the server refused for good, is recorded "skipped" with the reason, and not tried again
 * for that end.
 */
import pLimit from "p-limit";
import type { EndNoticeConfig } from "../config/types";
import type { Booking, EndNotice } from "../domain/booking";
import { isManual } from "../domain/booking";
import { errorMessage, TransientError } from "../errors";
import { renderEndNotice } from "../handover/message";
import { userRecipient } from "../handover/recipients";
import type { Mailer } from "../ports/mailer";
import type { Runtime } from "../ports/runtime";
import { settledWithin } from "../time";

/** How long a claim, or a notice the mail server did not take, waits before it is tried again. */
export const END_NOTICE_RETRY_MS = 30 * 60_000;

/**
 * How long a poll waits for its notices: a mail server that hangs must not hold up the bookings'
 * starts and ends. One still being sent then is recorded by the send itself, or claimed again.
 */
const MAIL_WAIT_MS = 20_000;

/** Notices sent at once. */
const NOTICE_CONCURRENCY = 8;

const HOUR_MS = 3_600_000;

type NoticeDeps = Pick<Runtime, "config" | "store" | "dashboard" | "mailer" | "logger" | "now">;

/** What a booking's notice needs now: a mail, a record that it is skipped, or nothing. */
export type EndNoticeDue = { send: true } | { send: false; reason: string } | null;

/** Whether `booking` is owed its notice at `now` (pure: the claim decides again with it). */
export function endNoticeDue(booking: Booking, settings: EndNoticeConfig, now: Date): EndNoticeDue {
  if (booking.state !== "ready" || booking.vanished) return null;
  // `laas deploy`'s bookings are the operators' own, told of nothing unless made for a user.
  if (isManual(booking.id) && booking.user === null) return null;
  const endMs = Date.parse(booking.end);
  const nowMs = now.getTime();
  if (nowMs >= endMs || nowMs < endMs - settings.beforeHours * HOUR_MS) return null;
  const record = booking.endNotice;
  if (record !== null && record.end === booking.end) {
    if (record.state === "sent" || record.state === "skipped") return null;
    // "sending" or "failed": tried again once its time is up.
    if (nowMs - Date.parse(record.at) < END_NOTICE_RETRY_MS) return null;
  }
  const lengthHours = (endMs - Date.parse(booking.start)) / HOUR_MS;
  if (lengthHours < settings.minBookingHours) {
    return {
      send: false,
      reason: `the booking lasts ${hoursText(lengthHours)}, under handover.end_notice.min_booking_hours (${settings.minBookingHours})`,
    };
  }
  return { send: true };
}

function hoursText(hours: number): string {
  return `${Number(hours.toFixed(1))} h`;
}

/** The claim: "sending" when a mail is due, "skipped" with its reason when it is not sent. */
function claimEndNotice(settings: EndNoticeConfig, now: Date) {
  return (current: Booking): Booking | null => {
    const due = endNoticeDue(current, settings, now);
    if (due === null) return null;
    const endNotice: EndNotice = due.send
      ? { end: current.end, state: "sending", at: now.toISOString(), reason: null }
      : { end: current.end, state: "skipped", at: now.toISOString(), reason: due.reason };
    return { ...current, endNotice };
  };
}

/** The outcome of the claim `claim`, unless another poller has claimed it again since. */
function settleEndNotice(claim: EndNotice, outcome: Omit<EndNotice, "end">) {
  return (current: Booking): Booking | null => {
    const held = current.endNotice;
    if (held?.end !== claim.end || held.state !== "sending" || held.at !== claim.at) return null;
    return { ...current, endNotice: { end: claim.end, ...outcome } };
  };
}

/**
 * The notices due among `bookings` (as the poll read them), each claimed and sent, for up to
 * MAIL_WAIT_MS. Answers the bookings whose notice was sent and the errors met (a booking's
 * trouble never stops the others'; a notice left undecided is claimed again later).
 */
export async function sendEndNotices(
  rt: NoticeDeps,
  bookings: Booking[],
): Promise<{ sent: string[]; errors: string[] }> {
  const settings = rt.config.handover?.endNotice ?? null;
  const mailer = rt.mailer;
  const outcome = { sent: [] as string[], errors: [] as string[] };
  if (settings === null || mailer === null) return outcome;
  const now = rt.now();
  const due = bookings.filter((booking) => endNoticeDue(booking, settings, now) !== null);
  if (due.length === 0) return outcome;
  const limit = pLimit(NOTICE_CONCURRENCY);
  const work = Promise.all(
    due.map((booking) =>
      limit(async () => {
        try {
          if (await noticeOne(rt, mailer, settings, booking, now)) outcome.sent.push(booking.id);
        } catch (error) {
          outcome.errors.push(`booking ${booking.id}: end notice: ${errorMessage(error)}`);
          rt.logger.warn(
            { bookingId: booking.id, err: errorMessage(error) },
            "could not decide the end notice",
          );
        }
      }),
    ),
  );
  if (!(await settledWithin(work, MAIL_WAIT_MS))) {
    rt.logger.warn({ waitedMs: MAIL_WAIT_MS }, "end notices still being sent");
  }
  return outcome;
}

/** One booking's notice: claimed, then sent (true) or recorded as not sent. */
async function noticeOne(
  rt: NoticeDeps,
  mailer: Mailer,
  settings: EndNoticeConfig,
  read: Booking,
  now: Date,
): Promise<boolean> {
  const { changed, item } = await rt.store.updateBooking(read.id, claimEndNotice(settings, now), {
    expected: read,
  });
  const claim = item.endNotice;
  if (!changed || claim === null) return false;
  const log = rt.logger.child({ bookingId: item.id });
  if (claim.state === "skipped") {
    log.info({ reason: claim.reason }, "end notice skipped");
    return false;
  }
  const settle = async (state: EndNotice["state"], reason: string | null) => {
    await rt.store.updateBooking(
      item.id,
      settleEndNotice(claim, { state, at: rt.now().toISOString(), reason }),
    );
  };
  let user: Awaited<ReturnType<NoticeDeps["dashboard"]["bookingUser"]>> = null;
  try {
    user = item.user === null ? null : await rt.dashboard.bookingUser(item.user);
  } catch (error) {
    await settle("failed", `the dashboard could not be asked for the user: ${errorMessage(error)}`);
    throw error;
  }
  const to = userRecipient(item, user, "end notice");
  if (!to.ok) {
    await settle("skipped", to.problem);
    log.warn({ reason: to.problem }, "end notice not sent");
    return false;
  }
  const message = renderEndNotice({
    bookingId: item.id,
    userName: user?.fullName ?? user?.username ?? null,
    hostName: item.hostName,
    end: item.end,
    at: now.toISOString(),
    vpn: item.access?.vpnUser != null,
    dashboardUrl: isManual(item.id) ? null : rt.config.dashboard,
  });
  try {
    const sent = await mailer.send({ to: to.to, ...message });
    await settle("sent", null);
    log.info({ messageId: sent.messageId, end: item.end }, "end notice sent");
    return true;
  } catch (error) {
    // What a retry may fix is tried again after END_NOTICE_RETRY_MS; a refusal is final.
    const again = error instanceof TransientError;
    await settle(again ? "failed" : "skipped", errorMessage(error));
    log.warn({ err: errorMessage(error), again }, "end notice not sent");
    return false;
  }
}
