/**
 * What a dashboard booking may hold, checked when poll reads it: everything in it can later
 * reach a shell (installer arguments), LDAP, libvirt XML, a file name or an e-mail. A booking that
 * breaks a rule is refused before its host is touched (poll.ts): the lab cannot serve it, and
 * finding out after imaging would cost the host and the bookings queued behind it. Adapters
 * still escape what they pass on; these rules are the door, not the only lock.
 *
 * A problem names the dashboard's field and what is wrong with it, never the value: a hostile
 * value must not travel on into logs, notes and mails.
 */
import { isValidHostname } from "../access/host-credentials";
import { installerConfigFor } from "../config/lookup";
import { isNoInstaller } from "../config/schema";
import type { PharosConfig } from "../config/types";
import type { DashboardBooking } from "../domain/booking";
import { ConfigError } from "../errors";
import type { DashboardUser } from "../ports/dashboard";

export interface BookingProblem {
  /** The dashboard's field name ("scenario_name", "installer_name", "purpose", "user"). */
  field: string;
  /** What is wrong, without the value. */
  reason: string;
}

/** OPNFV scenario names: "os-nosdn-nofeature-ha", "k8-calico-nofeature-noha", "os-odl_l2-…". */
const SCENARIO = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const MAX_SCENARIO_LENGTH = 64;
/** Installer names as default_configs spells them ("Fuel", "Joid", "apex"). */
const INSTALLER = /^[A-Za-z0-9][A-Za-z0-9._ -]*$/;
const MAX_INSTALLER_LENGTH = 64;
/** Django's user names (letters, digits and @ . + - _, at most 150), or a user id. */
const USER_REFERENCE = /^[\p{L}\p{N}_.@+-]+$/u;
const MAX_USER_LENGTH = 150;
const MAX_PURPOSE_LENGTH = 1000;

/**
 * Characters no field may hold: C0 and C1 controls and DEL (NUL ends C strings; newlines start
 * new header lines and log lines), and the bidirectional overrides that make text read other
 * than it is. The purpose may hold tab and line feed.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const UNPRINTABLE_IN_TEXT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

function unprintable(text: string, pattern: RegExp): string | null {
  const found = pattern.exec(text);
  if (!found) return null;
  const code = (found[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");
  return `holds a control character (U+${code}) at character ${[...text.slice(0, found.index)].length + 1}`;
}

function tooLong(text: string, most: number): string | null {
  const length = [...text].length;
  return length > most ? `is ${length} characters long; at most ${most} are allowed` : null;
}

function checkName(
  field: string,
  value: string,
  pattern: RegExp,
  most: number,
  allowed: string,
): BookingProblem | null {
  const reason =
    unprintable(value, UNPRINTABLE) ??
    tooLong(value, most) ??
    (pattern.test(value) ? null : `may hold only ${allowed}`);
  return reason === null ? null : { field, reason };
}

/** The first rule the booking breaks, or null when the lab can serve it. */
export function bookingProblem(
  booking: DashboardBooking,
  config: PharosConfig,
): BookingProblem | null {
  // A job's image: the lab's id must map to a FOG image (pharos.yaml `jobs.images`).
  const job = booking.job;
  if (job && job.labImageId !== null && job.fogImageId === null) {
    return {
      field: "image",
      reason: `names image ${job.labImageId}, which pharos.yaml jobs.images does not map to a FOG image`,
    };
  }
  if (job?.hostname && !isValidHostname(job.hostname)) {
    return {
      field: "hostname",
      reason:
        "is not a host name (labels of letters, digits and inner hyphens, 63 characters each)",
    };
  }
  if (booking.installer !== null) {
    const problem = checkName(
      "installer_name",
      booking.installer,
      INSTALLER,
      MAX_INSTALLER_LENGTH,
      "letters, digits, spaces and . _ -",
    );
    if (problem) return problem;
    if (!isNoInstaller(booking.installer)) {
      try {
        installerConfigFor(config, booking.installer);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        const known = [...config.defaultConfigs.keys()].filter((name) => name !== null);
        return {
          field: "installer_name",
          reason: `names no installer this lab has (it has: ${known.join(", ") || "none"})`,
        };
      }
    }
  }
  if (booking.scenario !== null) {
    const problem = checkName(
      "scenario_name",
      booking.scenario,
      SCENARIO,
      MAX_SCENARIO_LENGTH,
      "letters, digits and . _ + - (starting with a letter or digit)",
    );
    if (problem) return problem;
  }
  if (booking.user !== null) {
    const problem = checkName(
      "user",
      booking.user,
      USER_REFERENCE,
      MAX_USER_LENGTH,
      "letters, digits and @ . + - _ (a dashboard user name or id)",
    );
    if (problem) return problem;
  }
  const purpose =
    unprintable(booking.purpose, UNPRINTABLE_IN_TEXT) ??
    tooLong(booking.purpose, MAX_PURPOSE_LENGTH);
  if (purpose) return { field: "purpose", reason: purpose };
  return null;
}

/**
 * The dashboard user a booking names, as the user lookup answers (DashboardUser): their name
 * becomes the VPN account's uid and goes into the hand-over, so it follows the dashboard's own
 * rule for user names. Asked before the booking's host is claimed (poll.ts).
 */
export function bookingUserProblem(user: Pick<DashboardUser, "username">): BookingProblem | null {
  const problem = checkName(
    "user",
    user.username.trim(),
    USER_REFERENCE,
    MAX_USER_LENGTH,
    "letters, digits and @ . + - _",
  );
  return (
    problem && { field: "user", reason: `names a dashboard user whose name ${problem.reason}` }
  );
}

/** The booking's failure text for a refusal. */
export function refusalReason(problem: BookingProblem): string {
  return `InvalidBooking: refused before its host was touched: ${problem.field} ${problem.reason}`;
}
