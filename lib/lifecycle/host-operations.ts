/**
 * What an operator does to a host (`laas host …`, `laas deploy --reset`), as pure change
 * functions for Store.updateHost in the style of transitions.ts: each returns the new host, or
 * null when it does not apply to the host as it is now. A command decides on the host as it read
 * it; the changes that depend on that decision take what it saw (`SeenHost`) and decline when
 * the host has moved on since (poll claimed it, a workflow changed it), so that a decision made
 * on an old copy is never applied to a newer one. Each change records an event in the host's
 * history.
 */
import { type Host, type HostState, withEvent } from "../domain/host";

type HostChange = (current: Host) => Host | null;

/** The host as the command saw it when it decided. */
export interface SeenHost {
  state: HostState;
  bookingId: string | null;
}

function stillAsSeen(current: Host, seen: SeenHost): boolean {
  return current.state === seen.state && current.bookingId === seen.bookingId;
}

/**
 * The recorded host key is forgotten: the next login takes the first key the host shows (under
 * relay.host_identity's proof) and records it. Null when no key is recorded.
 */
export function forgetHostKey(now: Date, bookingId: string | null = null): HostChange {
  return (current) => {
    if (current.hostKey === null && current.hostKeyDeployed === null) return null;
    const detail =
      `${current.hostKey ?? "no key"} (of the deploy of ${current.hostKeyDeployed ?? "unknown time"}) ` +
      "forgotten by the operator";
    return withEvent(
      { ...current, hostKey: null, hostKeyDeployed: null },
      "key forgotten",
      bookingId,
      detail,
      now,
    );
  };
}

/**
 * The operator takes the host out of service, with their reason. Only a free host, or one still
 * held by a booking that is over (nothing runs on it: the command checked) — never one a booking
 * uses: that is the booking's until it ends.
 */
export function operatorQuarantine(why: string, seen: SeenHost, now: Date): HostChange {
  return (current) => {
    if (!stillAsSeen(current, seen)) return null;
    if (current.state === "quarantined") return null;
    return withEvent(
      {
        ...current,
        state: "quarantined",
        bookingId: null,
        reason: `quarantined by the operator: ${why}`,
      },
      "quarantined",
      current.bookingId,
      `by the operator: ${why}`,
      now,
    );
  };
}

/**
 * The operator's release (`laas host release`, `laas deploy --reset`): the host is cleaned under
 * booking `bookingId` — its holder's own release, or the operator's booking taking it over from
 * a quarantine, a free pool or a booking that is over. Whatever key the host shows, it is taken:
 * the recorded key is forgotten (a stale one would refuse the very login that cleans the host).
 * The failure streak starts again: the operator has vouched for the host.
 */
export function takeOverForRelease(bookingId: string, seen: SeenHost, now: Date): HostChange {
  return (current) => {
    if (!stillAsSeen(current, seen)) return null;
    const keyless = forgetHostKey(now, bookingId)(current) ?? current;
    const streak = current.failures > 0 ? `; failure streak of ${current.failures} cleared` : "";
    return withEvent(
      { ...keyless, state: "cleaning", bookingId, reason: null, failures: 0 },
      "release by the operator",
      bookingId,
      `reimaging with the clean image (was ${current.state})${streak}`,
      now,
    );
  };
}
