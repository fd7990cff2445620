/**
 * Access for the booking user, made after the pod is built and taken back at release:
 *
 *   CreateVpnUser   a VPN user in the lab's LDAP, with a fresh random password
 *   SetHostAccess   a fresh random root password (chpasswd, stdin) and the user's SSH key
 *   (MarkReady)
 *   HandOver        one message with everything, by e-mail (retried; never undoes a ready pod)
 *   UndoAccess      on any provision failure, before the failure is recorded: no orphan VPN user
 *   RevokeAccess    at release, before the host is reimaged (which takes password and key back)
 *
 * Secrets live in memory, in the sealed field of the booking (AES-256-GCM with the hand-over
 * key) until delivered, and in the message itself: never in a log line, an error, a step's
 * output (the workflow history) or the store in clear.
 */
import { installAuthorizedKey, setPassword } from "../access/host-credentials";
import { generatePassword } from "../access/passwords";
import { openCredentials, sealCredentials } from "../access/sealed";
import { parseSshPublicKey } from "../access/ssh-public-key";
import type { Runtime } from "../app/runtime";
import type { HandoverConfig, VpnConfig } from "../config/types";
import { type Booking, isManual, type Phase } from "../domain/booking";
import { ConfigError, NotFoundError, SupersededError } from "../errors";
import { type HandoverDetails, renderHandover } from "../handover/message";
import type { DashboardUser } from "../ports/dashboard";
import { type Directory, type RemovalOutcome, vpnUserNameProblem } from "../ports/directory";
import type { PhaseInput } from "../ports/engine";
import type { Mailer } from "../ports/mailer";
import { Secret } from "../secret";
import {
  accessWithdrawn,
  changeAccess,
  emptyAccess,
  handoverDelivered,
  handoverUndelivered,
  isHandoverRun,
} from "./access-transitions";
import { allOf, doneResult, recordDone } from "./checkpoints";
import { imagingConfig, loadCurrentBooking } from "./current-run";
import { onHost } from "./host-access";
import { type CaughtError, describeCaught } from "./outcomes";
import { noteProgress } from "./transitions";

/** The account whose password and keys the booking user gets. */
export const ROOT_ACCOUNT = "root";

/** chpasswd and the authorized_keys script are quick; a host that takes longer is in trouble. */
const ACCESS_COMMAND_TIMEOUT_SECONDS = 60;

const VPN_PASSWORD = "vpnPassword";
const KEY_INSTALLED = "installed ";
const KEY_NONE = "none given";
const ROOT_PASSWORD = "rootPassword";

/** What a step reports to the workflow: never a secret. */
export interface AccessStepResult {
  done: boolean;
  /** Why nothing was done, when nothing was. */
  skipped?: string;
}

/** The booked installer's vpn_config: where its users' VPN accounts live. */
function vpnOf(rt: Runtime, booking: Booking): VpnConfig {
  return imagingConfig(rt, booking, "provision").vpn;
}

async function withDirectory<T>(
  rt: Runtime,
  vpn: VpnConfig,
  work: (directory: Directory) => Promise<T>,
): Promise<T> {
  const directory = rt.directoryFor(vpn);
  try {
    return await work(directory);
  } finally {
    await directory.close().catch(() => undefined);
  }
}

/** The dashboard user of the booking, or null (manual bookings, dashboards without users). */
async function bookingUserOf(rt: Runtime, booking: Booking): Promise<DashboardUser | null> {
  if (!booking.user) return null;
  return rt.dashboard.bookingUser(booking.user);
}

/**
 * The VPN user name wanted: the dashboard user's name when it is one a directory can hold,
 * otherwise one made from the booking. The directory makes it unique.
 */
export function preferredVpnName(booking: Booking, user: DashboardUser | null): string {
  const name = user?.username.trim() ?? "";
  if (vpnUserNameProblem(name) === null) return name;
  return isManual(booking.id) ? `laas-${booking.hostName}` : `laas-booking-${booking.id}`;
}

function opened(handover: HandoverConfig, booking: Booking): Record<string, string> {
  const text = booking.access?.sealedCredentials;
  return text ? openCredentials(handover.sealingKey, text) : {};
}

/**
 * The password `name` of this run: the one sealed on the booking by an earlier attempt of the
 * step, or a new one — sealed and recorded before anything uses it, so an attempt after a crash
 * sets the same password as the one before it.
 */
async function runPassword(
  rt: Runtime,
  booking: Booking,
  input: PhaseInput,
  handover: HandoverConfig,
  name: string,
): Promise<Secret> {
  const sealed = opened(handover, booking)[name];
  if (sealed !== undefined) return new Secret(sealed);
  const password = generatePassword();
  const { changed } = await rt.store.updateBooking(
    booking.id,
    changeAccess("provision", input.generation, (access) => ({
      ...access,
      sealedCredentials: sealCredentials(handover.sealingKey, {
        ...(access.sealedCredentials
          ? openCredentials(handover.sealingKey, access.sealedCredentials)
          : {}),
        [name]: password.reveal(),
      }),
    })),
  );
  if (!changed) {
    throw new SupersededError(`booking ${booking.id}: the run ended before its access was made`);
  }
  return password;
}

export async function createVpnUser(rt: Runtime, input: PhaseInput): Promise<AccessStepResult> {
  const booking = await loadCurrentBooking(rt, input);
  const handover = rt.config.handover;
  if (!handover) return { done: false, skipped: "no handover section" };
  if (!handover.vpn) {
    await rt.store.updateBooking(
      booking.id,
      changeAccess("provision", input.generation, (a) => a),
    );
    return { done: false, skipped: "vpn: false" };
  }
  // A retry after the entry was made and recorded finds it on the booking.
  if (booking.access?.vpnUserDn) return { done: true };
  await rt.store.updateBooking(
    booking.id,
    noteProgress(input.phase, input.generation, "creating the VPN user"),
  );
  const log = rt.logger.child({ bookingId: booking.id, step: "CreateVpnUser" });
  const user = await bookingUserOf(rt, booking);
  const vpn = vpnOf(rt, booking);
  const password = await runPassword(rt, booking, input, handover, VPN_PASSWORD);
  await withDirectory(rt, vpn, async (directory) => {
    // An entry an earlier attempt made but could not record (a crash between the two): made
    // again, under the same name, with the password on record — never a second account.
    for (const earlier of await directory.listManagedUsers()) {
      if (earlier.bookingId !== booking.id) continue;
      const outcome = await directory.removeUser(earlier.dn, booking.id);
      log.info({ dn: earlier.dn, outcome }, "VPN user of an earlier attempt replaced");
    }
    const account = await directory.createUser({
      bookingId: booking.id,
      preferredName: preferredVpnName(booking, user),
      fullName: user?.fullName ?? null,
      email: user?.email ?? null,
      password,
    });
    const record = changeAccess("provision", input.generation, (access) => ({
      ...access,
      vpnUser: account.uid,
      vpnUserDn: account.dn,
    }));
    let changed = false;
    try {
      ({ changed } = await rt.store.updateBooking(booking.id, record));
    } finally {
      // Not recorded (superseded run, store down): the entry goes now, or the sweep takes it.
      if (!changed) await directory.removeUser(account.dn, booking.id).catch(() => undefined);
    }
    if (!changed) {
      throw new SupersededError(`booking ${booking.id}: the run that made the VPN user ended`);
    }
    log.info({ vpnUser: account.uid, dn: account.dn }, "VPN user created");
  });
  return { done: true };
}

const SET_HOST_ACCESS = "setHostAccess";

export async function setHostAccess(rt: Runtime, input: PhaseInput): Promise<AccessStepResult> {
  const booking = await loadCurrentBooking(rt, input);
  const recorded = doneResult(booking, input, SET_HOST_ACCESS);
  if (recorded !== undefined) return { done: true };
  const handover = rt.config.handover;
  if (!handover || (!handover.rootPassword && !handover.sshKey)) {
    return { done: false, skipped: handover ? "root_password and ssh_key off" : "no handover" };
  }
  await rt.store.updateBooking(
    booking.id,
    noteProgress(input.phase, input.generation, "setting the root password and SSH key"),
  );
  const log = rt.logger.child({ bookingId: booking.id, step: "SetHostAccess" });
  const user = handover.sshKey ? await bookingUserOf(rt, booking) : null;
  const key = handover.sshKey ? sshKeyOf(user) : null;
  const password = handover.rootPassword
    ? await runPassword(rt, booking, input, handover, ROOT_PASSWORD)
    : null;
  await onHost(rt, input.hostName, async (host, login) => {
    // The login user decides whether the commands need sudo.
    const options = { loginUser: login.user, timeoutSeconds: ACCESS_COMMAND_TIMEOUT_SECONDS };
    if (password) await setPassword(host, ROOT_ACCOUNT, password, options);
    if (key?.ok) await installAuthorizedKey(host, ROOT_ACCOUNT, key.line, options);
  });
  const sshKey = !handover.sshKey
    ? null
    : key === null
      ? KEY_NONE
      : key.ok
        ? `${KEY_INSTALLED}${key.fingerprint}`
        : `refused: ${key.reason}`;
  await rt.store.updateBooking(
    booking.id,
    allOf(
      changeAccess("provision", input.generation, (access) => ({
        ...access,
        rootPasswordSet: password !== null || access.rootPasswordSet,
        sshKey,
      })),
      recordDone(input, SET_HOST_ACCESS, { done: true }, rt.now()),
    ),
  );
  log.info({ rootPassword: password ? "set" : "unchanged", sshKey }, "host access set");
  return { done: true };
}

type KeyCheck = ReturnType<typeof parseSshPublicKey>;

function sshKeyOf(user: DashboardUser | null): KeyCheck | null {
  if (!user?.sshPublicKey) return null;
  return parseSshPublicKey(user.sshPublicKey);
}

export interface HandOverResult {
  delivered: boolean;
  recipients?: number;
  skipped?: string;
}

/** Who gets the hand-over: the user when the dashboard gives an address, and the operators. */
export function recipientsOf(
  handover: HandoverConfig,
  user: DashboardUser | null,
): { to: string[]; cc: string[] } {
  const operators = handover.email.operators;
  if (user?.email) return { to: [user.email], cc: operators.filter((o) => o !== user.email) };
  return { to: operators, cc: [] };
}

/** The hand-over message of a booking, with the credentials opened from their seal. */
async function handoverMessage(
  rt: Runtime,
  booking: Booking,
  handover: HandoverConfig,
): Promise<{ to: string[]; cc: string[]; subject: string; text: string; html: string }> {
  const access = booking.access ?? emptyAccess();
  const credentials = opened(handover, booking);
  const user = await bookingUserOf(rt, booking);
  const host = await rt.store.getHost(booking.hostName);
  const vpn = vpnOf(rt, booking);
  const details: HandoverDetails = {
    bookingId: booking.id,
    userName: user?.fullName ?? user?.username ?? null,
    hostName: booking.hostName,
    hostAddress: host?.address ?? "unknown",
    vpnServer: access.vpnUser ? vpn.server : null,
    vpnUser: access.vpnUser,
    vpnPassword: credentials[VPN_PASSWORD] ?? null,
    rootPassword: credentials[ROOT_PASSWORD] ?? null,
    rootUser: ROOT_ACCOUNT,
    installer: booking.installer,
    scenario: booking.scenario,
    end: booking.end,
    purpose: booking.purpose,
    sshKey: keyForMessage(access.sshKey),
    dashboardUrl: isManual(booking.id) ? null : rt.config.dashboard,
  };
  const recipients = recipientsOf(handover, user);
  if (recipients.to.length === 0) {
    throw new ConfigError(
      `booking ${booking.id}: no address for the hand-over: the dashboard gave none for the user and handover.email.operators is empty`,
    );
  }
  return { ...recipients, ...renderHandover(details) };
}

/** The key's outcome as recorded ("installed SHA256:…", "none given", "refused: …") → message. */
function keyForMessage(state: string | null): HandoverDetails["sshKey"] {
  if (state === null) return null;
  if (state.startsWith(KEY_INSTALLED)) {
    return { installed: true, fingerprint: state.slice(KEY_INSTALLED.length) };
  }
  if (state === KEY_NONE) {
    return { installed: false, reason: "the dashboard has no SSH public key for you" };
  }
  return { installed: false, reason: `the key on the dashboard was ${state}` };
}

export async function handOver(rt: Runtime, input: PhaseInput): Promise<HandOverResult> {
  const booking = await rt.store.getBooking(input.bookingId);
  if (!booking) throw new NotFoundError(`booking ${input.bookingId} is not in the store`);
  const handover = rt.config.handover;
  if (!handover || !rt.mailer) return { delivered: false, skipped: "no handover section" };
  if (!isHandoverRun(booking, input.generation)) {
    return { delivered: false, skipped: `booking is ${booking.state}` };
  }
  if (booking.access?.handover === "delivered") return { delivered: true };
  const recipients = await deliverHandover(rt, booking, handover, rt.mailer);
  return { delivered: true, recipients: recipients.length };
}

/**
 * Sends a ready booking's hand-over and drops its sealed credentials: the HandOver step, and
 * `laas handover` for one whose delivery gave up. Answers who it went to.
 */
export async function deliverHandover(
  rt: Runtime,
  booking: Booking,
  handover: HandoverConfig,
  mailer: Mailer,
): Promise<string[]> {
  const message = await handoverMessage(rt, booking, handover);
  const sent = await mailer.send(message);
  await rt.store.updateBooking(booking.id, handoverDelivered(booking.provisionGeneration));
  const recipients = [...message.to, ...message.cc];
  rt.logger.info(
    { bookingId: booking.id, messageId: sent.messageId, recipients: recipients.length },
    "hand-over delivered",
  );
  return recipients;
}

export interface HandOverFailedInput extends PhaseInput {
  error: CaughtError;
}

/** Delivery gave up after its retries: say so on the booking; the pod stays ready. */
export async function recordUndelivered(
  rt: Runtime,
  input: HandOverFailedInput,
): Promise<{ handover: string }> {
  const reason = describeCaught(input.error);
  await rt.store.updateBooking(input.bookingId, handoverUndelivered(input.generation, reason));
  rt.logger.error({ bookingId: input.bookingId, reason }, "hand-over not delivered");
  return { handover: "undelivered" };
}

/**
 * Takes back the VPN user of the current run of `phase` (release, or a failed provision). The
 * root password and SSH key need no undoing: the host is reimaged (release) or quarantined.
 */
async function takeBackAccess(
  rt: Runtime,
  booking: Booking,
  phase: Phase,
  generation: number,
): Promise<RemovalOutcome | "none"> {
  const dn = booking.access?.vpnUserDn;
  let outcome: RemovalOutcome | "none" = "none";
  if (dn) {
    outcome = await withDirectory(rt, vpnOf(rt, booking), (directory) =>
      directory.removeUser(dn, booking.id),
    );
    rt.logger.info({ bookingId: booking.id, dn, outcome }, "VPN user taken back");
  }
  if (booking.access) {
    await rt.store.updateBooking(booking.id, changeAccess(phase, generation, accessWithdrawn));
  }
  return outcome;
}

export async function revokeAccess(
  rt: Runtime,
  input: PhaseInput,
): Promise<{ vpnUser: RemovalOutcome | "none" }> {
  const booking = await loadCurrentBooking(rt, input);
  return { vpnUser: await takeBackAccess(rt, booking, input.phase, input.generation) };
}

export interface UndoAccessInput extends PhaseInput {
  error?: CaughtError;
}

/** Provision failed: take back what access was made, before the failure is recorded. */
export async function undoAccess(
  rt: Runtime,
  input: UndoAccessInput,
): Promise<{ vpnUser: RemovalOutcome | "none" | "superseded" }> {
  let booking: Booking;
  try {
    booking = await loadCurrentBooking(rt, input);
  } catch (error) {
    if (error instanceof SupersededError) return { vpnUser: "superseded" };
    throw error;
  }
  // Should this keep failing, the workflow records the failure all the same and the sweep
  // removes the entry later.
  return { vpnUser: await takeBackAccess(rt, booking, input.phase, input.generation) };
}
