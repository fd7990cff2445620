/**
 * Who is sent a hand-over, with its passwords, and who is only told about it.
 *
 * A dashboard booking's hand-over goes to its user alone, at the address the dashboard gives.
 * The operators (`handover.email.operators`) get a separate notice without credentials. When the
 * dashboard gives no address (it does not say who booked, does not know the user, or has no
 * address for them), the hand-over is not sent to anyone else in the user's place: it fails as
 * undelivered, the credentials stay sealed on the booking, and `laas handover <booking>` sends it
 * once the dashboard has the address.
 *
 * A manual booking (`laas deploy`) was made by an operator for the lab's own use: it has no
 * dashboard user, and its hand-over goes to the operators, its users.
 */
import { type Booking, isManual } from "../domain/booking";
import { LaasError } from "../errors";
import type { DashboardUser } from "../ports/dashboard";

/** The hand-over has no one it may go to. Not retried: the dashboard must change first. */
export class NoRecipientError extends LaasError {
  override name = "NoRecipient";
}

export type HandoverRecipients =
  | { ok: true; to: string[] }
  | { ok: false; problem: string; command: string | null };

/** The command that sends a booking's hand-over whose delivery gave up. */
export function resendCommand(bookingId: string): string {
  return `laas handover ${bookingId}`;
}

export function handoverRecipients(
  booking: Pick<Booking, "id" | "user">,
  user: DashboardUser | null,
  operators: string[],
): HandoverRecipients {
  if (isManual(booking.id)) {
    return operators.length > 0
      ? { ok: true, to: operators }
      : {
          ok: false,
          problem: `manual booking ${booking.id}: its hand-over goes to handover.email.operators, which is empty`,
          command: null,
        };
  }
  const to = userRecipient(booking, user, "hand-over");
  return to.ok ? to : { ...to, command: resendCommand(booking.id) };
}

/**
 * The booking user's address as the dashboard gives it, for `what` ("hand-over", "end notice"),
 * or why there is none. Never anyone in the user's place.
 */
export function userRecipient(
  booking: Pick<Booking, "id" | "user">,
  user: DashboardUser | null,
  what: string,
): { ok: true; to: string[] } | { ok: false; problem: string } {
  if (user?.email) return { ok: true, to: [user.email] };
  if (booking.user === null) {
    return {
      ok: false,
      problem: `booking ${booking.id}: the dashboard does not say who booked it, so there is no address for its ${what}`,
    };
  }
  const who = JSON.stringify(booking.user);
  return {
    ok: false,
    problem: user
      ? `booking ${booking.id}: the dashboard gives no e-mail address for its user ${who}`
      : `booking ${booking.id}: the dashboard does not know its user ${who}`,
  };
}

/** The error a hand-over with no recipient fails with: the problem and what clears it. */
export function noRecipientError(problem: string, command: string | null): NoRecipientError {
  const then = command
    ? `; the credentials stay sealed on the booking, and once the dashboard has the user's address \`${command}\` sends them`
    : "";
  return new NoRecipientError(`${problem}${then}`);
}
