/**
 * The hand-over of a job's booking: what the bookings API's e-mail tells the booking user, the
 * jobs API shows them in their tasks' messages. The host's task gets its address and root
 * password; the user's VPN task its account, with the password when this booking made it (an
 * account that was theirs already keeps its password, and says so). Posted while the passwords are
 * still sealed on the booking, before the hand-over drops them (access.ts deliverHandover).
 *
 * Run again, it posts what is not yet recorded as posted: the dashboard keeps the last message,
 * and the same message posted twice is one.
 */
import type { Booking } from "../../domain/booking";
import { jobKey } from "../../domain/job";
import { NotFoundError } from "../../errors";
import { accessTasks, jobUser } from "./bookings";
import { type JobsDeps, postAnswer, type TaskAnswer } from "./statuses";

/** What the hand-over knows, opened from the seal: never logged, never stored. */
export interface JobHandoverDetails {
  hostAddress: string | null;
  rootPassword: string | null;
  /** The key's fingerprint when it was installed for root. */
  sshKeyFingerprint: string | null;
  vpnServer: string | null;
  vpnUser: string | null;
  /** The account's password when this booking made it; null when it was the user's already. */
  vpnPassword: string | null;
  /** The accounts of the job's other users this booking holds (BookingAccess.vpnOthers). */
  vpnOthers: Array<{
    user: string;
    uid: string;
    accountFrom: string | null;
    /** When this booking made the account; null when it was theirs already. */
    password: string | null;
  }>;
}

function hostMessage(booking: Booking, details: JobHandoverDetails, ipmiAsked: boolean): string {
  const named = booking.job?.hostname ? ` as ${booking.job.hostname}` : "";
  const parts = [
    `${booking.hostName} is ready${named} at ${details.hostAddress ?? "an address the lab could not read"}.`,
  ];
  if (ipmiAsked) parts.push("An IPMI account was asked for: this lab does not make them.");
  if (details.rootPassword) parts.push(`Root password: ${details.rootPassword}`);
  if (details.sshKeyFingerprint) {
    parts.push(`Your SSH key ${details.sshKeyFingerprint} is installed for root.`);
  }
  return parts.join(" ");
}

function vpnMessage(server: string | null, uid: string, password: string | null): string {
  const where = server ?? "the lab's VPN server";
  return password
    ? `VPN account on ${where}: user ${uid}, password ${password}`
    : `VPN account on ${where}: user ${uid}, already yours; its password is unchanged.`;
}

/** Whether the booking that made an account (`from`) is another of the same job. */
function madeBySibling(booking: Booking, from: string | null): boolean {
  const job = booking.job;
  return (
    job !== null && from !== null && from !== booking.id && from.startsWith(`job-${job.jobId}-`)
  );
}

/** Posts the hand-over to the booking's tasks; throws what a post throws (the step retries). */
export async function handOverToJob(
  deps: JobsDeps,
  booking: Booking,
  details: JobHandoverDetails,
): Promise<void> {
  const job = booking.job;
  if (!job) throw new Error(`booking ${booking.id} is not a job's`);
  const key = jobKey(deps.jobs.lab, job.jobId);
  let record = await deps.store.getJob(key);
  if (!record) throw new NotFoundError(`job ${job.jobId} is not in the store`);
  const posts: Array<{ taskId: string; answer: TaskAnswer }> = [];
  const hardware = record.tasks[job.taskId];
  if (hardware?.round === "provision") {
    posts.push({
      taskId: job.taskId,
      answer: {
        status: 200,
        message: hostMessage(
          booking,
          details,
          hardware.task.kind === "hardware" && hardware.task.ipmiCreate,
        ),
        labToken: booking.id,
      },
    });
  }
  // Each user's VPN task: the job's user's account, and each other user's this booking holds.
  const accounts = [
    ...(details.vpnUser
      ? [
          {
            user: jobUser(record),
            uid: details.vpnUser,
            accountFrom: booking.access?.vpnAccountFrom ?? null,
            password: details.vpnPassword,
          },
        ]
      : []),
    ...details.vpnOthers,
  ];
  for (const account of accounts) {
    const vpn = accessTasks(record).find(
      (t) => t.round === "provision" && t.task.accessType === "vpn" && t.task.user === account.user,
    );
    // The sibling that made the account posts its password: this one must not say "unchanged"
    // over it.
    if (!vpn || madeBySibling(booking, account.accountFrom)) continue;
    posts.push({
      taskId: vpn.taskId,
      answer: {
        status: 200,
        message: vpnMessage(details.vpnServer, account.uid, account.password),
        labToken: `vpn-${account.uid}`.slice(0, 50),
      },
    });
  }
  for (const { taskId, answer } of posts) {
    if ((record.tasks[taskId]?.posted?.status ?? 0) >= 200) continue;
    record = await postAnswer(deps, record, taskId, answer);
  }
}
