/**
 * Access for the booking user, made after the pod is built and taken back at release:
 *
 *   CreateVpnUser   the booking user's one VPN account in the lab's LDAP (vpn-person.ts): made
 *                   with a fresh random password by their first booking, reused by the others
 *                   while any holds it. A booking without a dashboard user (`laas deploy`), or
 *                   one an earlier version began, has an account of its own: its DN recorded
 *                   before the add and its entryUUID after, which is what release takes back
 *   SetHostAccess   a fresh random root password (chpasswd, stdin) and the user's SSH key
 *   (MarkReady)
 *   HandOver        one message with everything, by e-mail (retried; never undoes a ready pod)
 *   UndoAccess      on any provision failure, before the failure is recorded: no orphan VPN user
 *   RevokeAccess    at release, before the host is reimaged (which takes password and key back):
 *                   the booking lets go of its user's account, removed when no booking holds it
 *
 * Secrets live in memory, in the sealed field of the booking (AES-256-GCM with the hand-over
 * key, bound to the booking) until delivered, and in the message itself: never in a log line, an
 * error, a step's output (the workflow history) or the store in clear.
 */
import { installAuthorizedKey, setHostname, setPassword } from "../access/host-credentials";
import { generatePassword } from "../access/passwords";
import { openCredentials, sealCredentials } from "../access/sealed";
import { parseSshPublicKey } from "../access/ssh-public-key";
import type { HandoverConfig, VpnConfig } from "../config/types";
import { type Booking, type BookingAccess, isManual, type Phase } from "../domain/booking";
import type { Host } from "../domain/host";
import {
  ConfigError,
  errorMessage,
  NotFoundError,
  SupersededError,
  TransientError,
} from "../errors";
import {
  type HandoverDetails,
  type HandoverNoticeDetails,
  renderHandover,
  renderHandoverNotice,
} from "../handover/message";
import { handoverRecipients, noRecipientError } from "../handover/recipients";
import type { DashboardUser } from "../ports/dashboard";
import {
  type Directory,
  type RemovalOutcome,
  type VpnAccount,
  vpnUserNameProblem,
} from "../ports/directory";
import type { PhaseInput } from "../ports/engine";
import type { Mailer } from "../ports/mailer";
import type { Runtime } from "../ports/runtime";
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
import { handOverToJob } from "./jobs/handover";
import { mailUndelivered, operatorsReachable } from "./operator-mail";
import { type CaughtError, describeCaught } from "./outcomes";
import { updateBookingProgress } from "./progress";
import { isCurrentRun, noteProgress } from "./transitions";
import {
  acquirePersonAccount,
  type HeldAccount,
  personKey,
  releasePersonAccount,
} from "./vpn-person";
import { recordedVpnEntry } from "./vpn-record";

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
  return text ? openCredentials(handover.sealingKey, booking.id, text) : {};
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
      sealedCredentials: sealCredentials(handover.sealingKey, booking.id, {
        ...(access.sealedCredentials
          ? openCredentials(handover.sealingKey, booking.id, access.sealedCredentials)
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
  // A retry after the accounts were got and recorded finds them on the booking.
  const access = booking.access;
  // A job with no VPN task for its user (none at all, or ssh only) makes no account of its own:
  // nobody would be given it.
  const own =
    Boolean(access?.vpnUserDn || (access?.vpnPerson && access.vpnUser)) ||
    (booking.job !== null && booking.user === null);
  const others = (booking.job?.otherUsers ?? []).every(
    (user) => access?.vpnOthers.find((o) => o.user === user)?.uid,
  );
  if (own && others) return { done: true };
  await updateBookingProgress(
    rt,
    booking.id,
    noteProgress(input.phase, input.generation, "creating the VPN user"),
  );
  const vpn = vpnOf(rt, booking);
  if (!own) {
    const user = await bookingUserOf(rt, booking);
    // A dashboard user has one account for all their bookings; an attempt of an earlier
    // version that chose a DN for an account of the booking's own finishes that one.
    if (booking.user !== null && !access?.vpnIntendedDn) {
      await personAccount(
        rt,
        booking.id,
        input,
        handover,
        vpn,
        booking.user,
        user,
        bookingUserSlot,
      );
    } else {
      await ownAccount(rt, booking, input, handover, vpn, user);
    }
  }
  // A job's other users (collaborators) get theirs too, held by this booking as well.
  for (const other of booking.job?.otherUsers ?? []) {
    if (access?.vpnOthers.find((o) => o.user === other)?.uid) continue;
    const user = await rt.dashboard.bookingUser(other);
    await personAccount(rt, booking.id, input, handover, vpn, other, user, (key) =>
      otherUserSlot(key, other),
    );
  }
  return { done: true };
}

/** An account of the booking's own: a booking with no dashboard user (`laas deploy`). */
async function ownAccount(
  rt: Runtime,
  booking: Booking,
  input: PhaseInput,
  handover: HandoverConfig,
  vpn: VpnConfig,
  user: DashboardUser | null,
): Promise<void> {
  const log = rt.logger.child({ bookingId: booking.id, step: "CreateVpnUser" });
  const password = await runPassword(rt, booking, input, handover, VPN_PASSWORD);
  await withDirectory(rt, vpn, async (directory) => {
    // The DN is recorded before the add (vpnIntendedDn) and the entryUUID after it; an attempt
    // interrupted between the two leaves a DN whose entry nobody read the entryUUID of. That
    // entry is adopted — kept under its name, with the password on record — rather than
    // deleted and made again, or left for a second account: the directory takes it only when
    // it stands at the recorded DN (free when chosen), carries this booking's label and was
    // made by the account LaaS binds as (creatorsName, set by the server). That is the best
    // proof there is without an entryUUID, and one a user who can edit their own entry's
    // description cannot fake: their entry is not at a DN that was free when LaaS chose it.
    // Anything else at that DN is left alone, and createUser picks another name.
    const intended = booking.access?.vpnIntendedDn ?? null;
    let account: VpnAccount | null = null;
    if (intended) {
      const adopted = await directory.adoptUser(intended, booking.id, password);
      if (typeof adopted === "object") account = adopted;
      else
        log.info({ dn: intended, outcome: adopted }, "VPN entry of an earlier attempt not adopted");
    }
    account ??= await directory.createUser(
      {
        bookingId: booking.id,
        preferredName: preferredVpnName(booking, user),
        fullName: user?.fullName ?? null,
        email: user?.email ?? null,
        password,
      },
      async ({ dn }) => {
        const { changed } = await rt.store.updateBooking(
          booking.id,
          changeAccess("provision", input.generation, (access) => ({
            ...access,
            vpnIntendedDn: dn,
          })),
        );
        if (!changed) {
          throw new SupersededError(`booking ${booking.id}: the run ended before its VPN user`);
        }
      },
    );
    const made = account;
    const record = changeAccess("provision", input.generation, (access) => ({
      ...access,
      vpnUser: made.uid,
      vpnUserDn: made.dn,
      vpnEntryUuid: made.entryUUID,
      vpnIntendedDn: null,
    }));
    let changed = false;
    try {
      ({ changed } = await rt.store.updateBooking(booking.id, record));
    } finally {
      // Not recorded (superseded run, store down): the entry goes now, or the sweep takes it
      // by the DN already on record.
      if (!changed) {
        await directory
          .removeUser({ dn: made.dn, entryUUID: made.entryUUID }, booking.id)
          .catch(() => undefined);
      }
    }
    if (!changed) {
      throw new SupersededError(`booking ${booking.id}: the run that made the VPN user ended`);
    }
    log.info({ vpnUser: made.uid, dn: made.dn, entryUUID: made.entryUUID }, "VPN user created");
  });
}

/**
 * Where on the booking one person's account is kept: the booking user's (vpnPerson, vpnUser,
 * vpnAccountFrom), or one of its job's other users' (vpnOthers).
 */
interface AccountSlot {
  /** Names the person's key on the booking (before it joins the record); unchanged if named. */
  note(access: BookingAccess): BookingAccess;
  /** Whether the booking names it. */
  noted(access: BookingAccess | null): boolean;
  /** Records the account got. */
  record(access: BookingAccess, account: HeldAccount): BookingAccess;
  /** The sealed password's name, when this booking makes the account. */
  passwordName: string;
}

function bookingUserSlot(key: string): AccountSlot {
  return {
    note: (access) => (access.vpnPerson === key ? access : { ...access, vpnPerson: key }),
    noted: (access) => access?.vpnPerson === key,
    record: (access, account) => ({
      ...access,
      vpnUser: account.uid,
      vpnAccountFrom: account.madeFor,
    }),
    passwordName: VPN_PASSWORD,
  };
}

/** Where the password of another user's account waits, sealed with the booking's own. */
export function otherVpnPasswordName(user: string): string {
  return `${VPN_PASSWORD}:${user}`;
}

function otherUserSlot(key: string, user: string): AccountSlot {
  return {
    note: (access) =>
      access.vpnOthers.some((o) => o.user === user)
        ? access
        : {
            ...access,
            vpnOthers: [...access.vpnOthers, { user, person: key, uid: null, accountFrom: null }],
          },
    noted: (access) => access?.vpnOthers.some((o) => o.user === user) ?? false,
    record: (access, account) => ({
      ...access,
      vpnOthers: access.vpnOthers.map((o) =>
        o.user === user ? { ...o, uid: account.uid, accountFrom: account.madeFor } : o,
      ),
    }),
    passwordName: otherVpnPasswordName(user),
  };
}

/**
 * The booking acquires a person's one VPN account — its user's, or one of its job's other users'
 * (a collaborator, jobs API): the person's key recorded on the booking first (so that release
 * lets go of it whatever happens next), then the account acquired, then what the hand-over needs
 * recorded. A password is made and sealed only when this booking makes the account; one that
 * reuses it leaves its password unchanged.
 */
async function personAccount(
  rt: Runtime,
  bookingId: string,
  input: PhaseInput,
  handover: HandoverConfig,
  vpn: VpnConfig,
  userId: string,
  user: DashboardUser | null,
  slotOf: (key: string) => AccountSlot,
): Promise<void> {
  const key = personKey(vpn, userId);
  const slot = slotOf(key);
  const log = rt.logger.child({ bookingId, step: "CreateVpnUser", user: userId });
  const noted = await rt.store.updateBooking(
    bookingId,
    changeAccess("provision", input.generation, slot.note),
  );
  if (!slot.noted(noted.item.access) || !isCurrentRun(noted.item, "provision", input.generation)) {
    throw new SupersededError(`booking ${bookingId}: the run ended before its VPN account`);
  }
  await withDirectory(rt, vpn, async (directory) => {
    const account = await acquirePersonAccount(
      rt,
      directory,
      {
        key,
        user: userId,
        bookingId,
        newUser: {
          preferredName: preferredVpnName(noted.item, user),
          fullName: user?.fullName ?? null,
          email: user?.email ?? null,
        },
        password: () => runPassword(rt, noted.item, input, handover, slot.passwordName),
      },
      log,
    );
    const { changed } = await rt.store.updateBooking(
      bookingId,
      changeAccess("provision", input.generation, (access) => slot.record(access, account)),
    );
    if (!changed) {
      // The run ended meanwhile (its undo may have run already): the booking lets go here.
      await releasePersonAccount(rt, directory, key, bookingId, log).catch(() => undefined);
      throw new SupersededError(`booking ${bookingId}: the run that got the VPN account ended`);
    }
    log.info(
      { vpnUser: account.uid, dn: account.dn, made: account.made, madeFor: account.madeFor },
      account.made ? "VPN account made for the person" : "VPN account of the person reused",
    );
  });
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
  await updateBookingProgress(
    rt,
    booking.id,
    noteProgress(input.phase, input.generation, "setting the root password and SSH key"),
  );
  const log = rt.logger.child({ bookingId: booking.id, step: "SetHostAccess" });
  // A job's key is its ssh access task's (the jobs API has no user API to ask).
  const user = handover.sshKey && !booking.job ? await bookingUserOf(rt, booking) : null;
  const key = !handover.sshKey
    ? null
    : booking.job
      ? sshKeyOf({ sshPublicKey: booking.job.sshKey })
      : sshKeyOf(user);
  const password = handover.rootPassword
    ? await runPassword(rt, booking, input, handover, ROOT_PASSWORD)
    : null;
  // The keys of the job's other users for this host (collaborators' ssh tasks).
  const otherKeys = handover.sshKey
    ? (booking.job?.otherSshKeys ?? []).map((k) => ({
        user: k.user,
        check: sshKeyOf({ sshPublicKey: k.key }),
      }))
    : [];
  await onHost(rt, input.hostName, async (host, login) => {
    // The login user decides whether the commands need sudo.
    const options = { loginUser: login.user, timeoutSeconds: ACCESS_COMMAND_TIMEOUT_SECONDS };
    // The machine is shown again to be the booked host right before the password goes to it.
    if (password) await host.confirmIdentity();
    if (password) await setPassword(host, ROOT_ACCOUNT, password, options);
    if (key?.ok) await installAuthorizedKey(host, ROOT_ACCOUNT, key.line, options);
    for (const other of otherKeys) {
      if (other.check?.ok)
        await installAuthorizedKey(host, ROOT_ACCOUNT, other.check.line, options);
    }
    // A job's hardware task names the host's name (checked at poll, booking-rules.ts).
    if (booking.job?.hostname) await setHostname(host, booking.job.hostname, options);
  });
  const outcomeOf = (check: KeyCheck | null) =>
    check === null
      ? KEY_NONE
      : check.ok
        ? `${KEY_INSTALLED}${check.fingerprint}`
        : `refused: ${check.reason}`;
  const sshKey = handover.sshKey ? outcomeOf(key) : null;
  const otherSshKeys = Object.fromEntries(otherKeys.map((k) => [k.user, outcomeOf(k.check)]));
  await rt.store.updateBooking(
    booking.id,
    allOf(
      changeAccess("provision", input.generation, (access) => ({
        ...access,
        rootPasswordSet: password !== null || access.rootPasswordSet,
        sshKey,
        otherSshKeys,
      })),
      recordDone(input, SET_HOST_ACCESS, { done: true }, rt.now()),
    ),
  );
  log.info({ rootPasswordChange: password ? "set" : "unchanged", sshKey }, "host access set");
  return { done: true };
}

type KeyCheck = ReturnType<typeof parseSshPublicKey>;

function sshKeyOf(user: Pick<DashboardUser, "sshPublicKey"> | null): KeyCheck | null {
  if (!user?.sshPublicKey) return null;
  return parseSshPublicKey(user.sshPublicKey);
}

export interface HandOverResult {
  delivered: boolean;
  recipients?: number;
  skipped?: string;
}

/** The hand-over message of a booking, with the credentials opened from their seal. */
function handoverMessage(
  rt: Runtime,
  booking: Booking,
  handover: HandoverConfig,
  user: DashboardUser | null,
  host: Host | null,
): { subject: string; text: string; html: string } {
  const access = booking.access ?? emptyAccess();
  const credentials = opened(handover, booking);
  const vpn = vpnOf(rt, booking);
  const details: HandoverDetails = {
    bookingId: booking.id,
    userName: user?.fullName ?? user?.username ?? null,
    hostName: booking.hostName,
    hostAddress: host?.address ?? "unknown",
    vpnServer: access.vpnUser ? vpn.server : null,
    vpnUser: access.vpnUser,
    vpnPassword: credentials[VPN_PASSWORD] ?? null,
    vpnPasswordFrom:
      access.vpnAccountFrom !== null && access.vpnAccountFrom !== booking.id
        ? access.vpnAccountFrom
        : null,
    rootPassword: credentials[ROOT_PASSWORD] ?? null,
    rootUser: ROOT_ACCOUNT,
    installer: booking.installer,
    scenario: booking.scenario,
    end: booking.end,
    purpose: booking.purpose,
    sshKey: keyForMessage(access.sshKey),
    dashboardUrl: isManual(booking.id) ? null : rt.config.dashboard,
  };
  return renderHandover(details);
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

/** The booking user as the operators' notice names them. */
function userLabel(booking: Booking, user: DashboardUser | null): string | null {
  if (user) return user.fullName ? `${user.fullName} (${user.username})` : user.username;
  return booking.user === null ? null : `dashboard user ${booking.user}`;
}

/**
 * Tells the operators that a hand-over was sent, or why it could not be: booking, host, user,
 * recipients and time, never a credential. Best effort: the hand-over's own outcome is recorded
 * whatever becomes of this notice.
 */
async function noticeToOperators(
  rt: Runtime,
  booking: Booking,
  handover: HandoverConfig,
  mailer: Mailer,
  notice: Pick<HandoverNoticeDetails, "recipients" | "delivered" | "problem" | "command"> & {
    user: DashboardUser | null;
  },
): Promise<void> {
  const operators = handover.email.operators;
  if (operators.length === 0) return;
  const log = rt.logger.child({ bookingId: booking.id });
  try {
    const message = renderHandoverNotice({
      bookingId: booking.id,
      hostName: booking.hostName,
      user: userLabel(booking, notice.user),
      recipients: notice.recipients,
      delivered: notice.delivered,
      problem: notice.problem,
      command: notice.command,
      at: rt.now().toISOString(),
    });
    const sent = await mailer.send({ to: operators, ...message });
    log.info(
      { messageId: sent.messageId, recipients: operators.length, delivered: notice.delivered },
      "operators told of the hand-over",
    );
  } catch (error) {
    log.warn({ err: errorMessage(error) }, "could not tell the operators of the hand-over");
  }
}

/**
 * Sends a ready booking's hand-over to its user alone and drops its sealed credentials: the
 * HandOver step, and `laas handover` for one whose delivery gave up. The operators get a notice
 * without credentials. With no address for the user, nothing with credentials is sent: it throws
 * NoRecipientError (see lib/handover/recipients.ts). Answers who it went to.
 */
export async function deliverHandover(
  rt: Runtime,
  booking: Booking,
  handover: HandoverConfig,
  mailer: Mailer,
): Promise<string[]> {
  if (booking.job) return handOverInTasks(rt, booking, handover, mailer);
  const user = await bookingUserOf(rt, booking);
  const recipients = handoverRecipients(booking, user, handover.email.operators);
  if (!recipients.ok) {
    // The operators hear of it from RecordUndelivered (once, retried), or are the ones running
    // `laas handover`.
    throw noRecipientError(recipients.problem, recipients.command);
  }
  const host = await rt.store.getHost(booking.hostName);
  const message = handoverMessage(rt, booking, handover, user, host);
  const sent = await mailer.send({ to: recipients.to, ...message });
  await rt.store.updateBooking(booking.id, handoverDelivered(booking.provisionGeneration));
  rt.logger.info(
    { bookingId: booking.id, messageId: sent.messageId, recipients: recipients.to.length },
    "hand-over delivered",
  );
  // A manual booking's hand-over went to the operators themselves: nothing more to tell them.
  if (!isManual(booking.id)) {
    await noticeToOperators(rt, booking, handover, mailer, {
      user,
      recipients: recipients.to,
      delivered: true,
      problem: null,
      command: null,
    });
  }
  return recipients.to;
}

/**
 * A job's hand-over (the jobs API): in its tasks' messages, which the dashboard shows the user
 * (jobs/handover.ts), then the sealed credentials dropped and the operators told, as by mail.
 */
async function handOverInTasks(
  rt: Runtime,
  booking: Booking,
  handover: HandoverConfig,
  mailer: Mailer,
): Promise<string[]> {
  const jobs = rt.jobs;
  const job = booking.job;
  if (!jobs || !job) {
    throw new ConfigError(
      `booking ${booking.id} is a job's, and pharos.yaml does not say \`dashboard_api: jobs\``,
    );
  }
  const access = booking.access ?? emptyAccess();
  const credentials = opened(handover, booking);
  const host = await rt.store.getHost(booking.hostName);
  const key = keyForMessage(access.sshKey);
  await handOverToJob({ ...rt, jobs }, booking, {
    hostAddress: host?.address ?? null,
    rootPassword: credentials[ROOT_PASSWORD] ?? null,
    sshKeyFingerprint: key?.installed ? key.fingerprint : null,
    vpnServer: access.vpnUser ? vpnOf(rt, booking).server : null,
    vpnUser: access.vpnUser,
    vpnPassword: credentials[VPN_PASSWORD] ?? null,
    vpnOthers: access.vpnOthers.flatMap((o) =>
      o.uid === null
        ? []
        : [
            {
              user: o.user,
              uid: o.uid,
              accountFrom: o.accountFrom,
              password: credentials[otherVpnPasswordName(o.user)] ?? null,
            },
          ],
    ),
  });
  await rt.store.updateBooking(booking.id, handoverDelivered(booking.provisionGeneration));
  const to = [`the tasks of job ${job.jobId} on ${rt.config.dashboard}`];
  rt.logger.info({ bookingId: booking.id, jobId: job.jobId }, "hand-over posted to the job");
  await noticeToOperators(rt, booking, handover, mailer, {
    user: null,
    recipients: to,
    delivered: true,
    problem: null,
    command: null,
  });
  return to;
}

export interface HandOverFailedInput extends PhaseInput {
  error: CaughtError;
}

/**
 * Delivery gave up (after its retries, or at once for want of an address): say so on the booking
 * (the pod stays ready) and tell the operators, once. While they cannot be mailed the step fails
 * with a TransientError after recording, and the workflow's Retry tries the mail again; the
 * booking's record is written the same way each time.
 */
export async function recordUndelivered(
  rt: Runtime,
  input: HandOverFailedInput,
): Promise<{ handover: string; operatorsTold: boolean }> {
  const reason = describeCaught(input.error);
  await rt.store.updateBooking(input.bookingId, handoverUndelivered(input.generation, reason));
  // The pod stays ready and the operators are told: a warning, not an error of the lab.
  rt.logger.warn({ bookingId: input.bookingId, reason }, "hand-over not delivered");
  if (!operatorsReachable(rt)) return { handover: "undelivered", operatorsTold: false };
  if (!(await mailUndelivered(rt, input, reason))) {
    throw new TransientError(
      `the hand-over of booking ${input.bookingId} is recorded undelivered; the operators could not be mailed yet`,
    );
  }
  return { handover: "undelivered", operatorsTold: true };
}

/** What became of the booking's VPN account: "kept" while other bookings of its user hold it. */
export type AccessTakenBack = RemovalOutcome | "kept" | "none";

/**
 * Takes back the VPN user of the current run of `phase` (release, or a failed provision). The
 * root password and SSH key need no undoing: the host is reimaged (release) or quarantined.
 */
async function takeBackAccess(
  rt: Runtime,
  booking: Booking,
  phase: Phase,
  generation: number,
): Promise<AccessTakenBack> {
  // Only what the record names: the person's account the booking holds (removed only when no
  // other booking holds it), the entry made for the booking (with its entryUUID), or the DN an
  // interrupted attempt chose before its add.
  const person = booking.access?.vpnPerson ?? null;
  const entry = recordedVpnEntry(booking.access);
  let outcome: AccessTakenBack = "none";
  if (person) {
    const log = rt.logger.child({ bookingId: booking.id });
    outcome = await withDirectory(rt, vpnOf(rt, booking), (directory) =>
      releasePersonAccount(rt, directory, person, booking.id, log),
    );
    log.info({ vpnUser: booking.access?.vpnUser ?? null, outcome }, "VPN account let go");
  } else if (entry) {
    outcome = await withDirectory(rt, vpnOf(rt, booking), (directory) =>
      directory.removeUser(entry, booking.id),
    );
    rt.logger.info({ bookingId: booking.id, dn: entry.dn, outcome }, "VPN user taken back");
  }
  // The job's other users' accounts this booking holds: each let go (kept while others hold it).
  const others = booking.access?.vpnOthers ?? [];
  if (others.length > 0) {
    const log = rt.logger.child({ bookingId: booking.id });
    await withDirectory(rt, vpnOf(rt, booking), async (directory) => {
      for (const other of others) {
        const released = await releasePersonAccount(rt, directory, other.person, booking.id, log);
        log.info({ user: other.user, vpnUser: other.uid, outcome: released }, "VPN account let go");
      }
    });
  }
  if (booking.access) {
    await rt.store.updateBooking(booking.id, changeAccess(phase, generation, accessWithdrawn));
  }
  return outcome;
}

export async function revokeAccess(
  rt: Runtime,
  input: PhaseInput,
): Promise<{ vpnUser: AccessTakenBack }> {
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
): Promise<{ vpnUser: AccessTakenBack | "superseded" }> {
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
