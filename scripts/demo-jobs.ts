/**
 * The jobs part of the demo (`npm run demo -- --dashboard jobs`, scripts/demo.ts): three jobs on
 * the simulated jobs API (sim/jobs-dashboard-sim.ts), staggered like the bookings plan, one per
 * host. Each task's status is printed as the lab posts it (passwords masked); each job ends half
 * a minute after its host was handed over, and the demo follows its cleanup until the dashboard
 * no longer holds its hosts and every booking is released.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { table } from "../lib/cli/status";
import type { Booking } from "../lib/domain/booking";
import {
  accessTask,
  hardwareTask,
  type JobsDashboardSim,
  networkTask,
  type SimTask,
  softwareTask,
  type TaskSpec,
} from "../sim/jobs-dashboard-sim";
import type { SimulatedLab } from "../sim/lab";
import { generateSshKey } from "../sim/sshd";

/** How long a job's booking runs once its host is handed over (the bookings' half-minute). */
const HOLD_MS = 30_000;

/** Three jobs: dashboard image 5 is Fuel's (FOG image 2), 3 the clean one (FOG image 1). */
const PLAN = [
  { job: 1, host: 0, imageId: 5, installer: "Fuel", startIn: 2, user: 1, ssh: true, network: true },
  {
    job: 2,
    host: 1,
    imageId: 5,
    installer: "Fuel",
    startIn: 6,
    user: 2,
    ssh: false,
    network: false,
  },
  {
    job: 3,
    host: 2,
    imageId: 3,
    installer: null,
    startIn: 10,
    user: 1,
    ssh: false,
    network: false,
  },
] as const;

export interface JobsDemo {
  lab: SimulatedLab;
  say: (line: string) => void;
  /** Prints each booking whose line changed; returns the store's bookings. */
  showBookings: () => Promise<Booking[]>;
  /** Prints each message the SMTP server caught since the last call. */
  showMail: () => void;
  /** Date.now() when the demo began, and how long it may run. */
  began: number;
  deadlineMs: number;
}

/** A message as the demo prints it: every password in it masked. */
export function maskPasswords(message: string): string {
  // "Root password: <pw>" (hardware), "user <name>, password <pw>" (vpn); not "password is …".
  return message.replace(/(\bpassword:?\s+)(?!is\b)\S+/gi, "$1********");
}

/** A task's kind as the demo names it: access tasks with their type. */
export function taskKind(task: Pick<SimTask, "kind" | "config">): string {
  return task.kind === "access" ? `access ${String(task.config.access_type)}` : task.kind;
}

/** Every task of every job: its final status and lab token. */
export function taskTable(sim: JobsDashboardSim): string {
  return table(
    ["JOB", "TASK", "STATUS", "LAB TOKEN"],
    sim.jobs.flatMap((job) =>
      job.tasks.map((t) => [String(job.id), taskKind(t), String(t.status), t.labToken]),
    ),
  );
}

/** Runs the three jobs to their cleanup; 0 when every booking was released, else 1. */
export async function runJobsDemo(demo: JobsDemo): Promise<number> {
  const { lab, say } = demo;
  const sim = lab.jobsDashboard;
  if (!sim) throw new Error("the lab was started without the jobs API");
  const key = await generateSshKey("ada@laptop");
  const t0 = Date.now();
  const added = new Set<number>();
  const answeredAt = new Map<number, number>();
  const ended = new Set<number>();
  const shown = new Map<string, string>();
  let postsShown = 0;

  const addJob = (p: (typeof PLAN)[number]) => {
    const host = lab.inventory[p.host]!;
    const tasks: TaskSpec[] = [
      hardwareTask({ hostLabId: host.resourceId, imageId: p.imageId }),
      accessTask({ accessType: "vpn", user: p.user }),
    ];
    if (p.ssh) {
      tasks.push(
        accessTask({
          accessType: "ssh",
          user: p.user,
          key: key.publicKey,
          hosts: [host.resourceId],
        }),
      );
    }
    tasks.push(
      p.installer
        ? softwareTask({
            bookingId: p.job,
            installer: p.installer,
            scenario: "os-nosdn-nofeature-ha",
          })
        : softwareTask({ bookingId: p.job }),
    );
    if (p.network) {
      tasks.push(
        networkTask({
          hostLabId: host.resourceId,
          interfaces: { [host.mac.toLowerCase()]: [{ vlanId: 101, tagged: true }] },
        }),
      );
    }
    const job = sim.addJob(tasks, p.job);
    added.add(p.job);
    say(
      `job ${job.id} on ${host.name} (lab id ${host.resourceId}), image ${p.imageId}, installer ${p.installer ?? "none"}, user ${p.user}: ${job.tasks.map(taskKind).join(", ")}`,
    );
  };

  const showTask = (jobId: number | string, task: SimTask, status: string, message: string) => {
    const line = `job ${jobId} ${taskKind(task)}: ${status}${message ? ` — ${maskPasswords(message)}` : ""}`;
    if (shown.get(task.taskId) === line) return;
    shown.set(task.taskId, line);
    say(line);
  };

  // Each status the lab posted, in order (a poll of the tasks could miss a quick 100).
  const showPosts = () => {
    for (const post of sim.statusPosts.slice(postsShown)) {
      const task = sim.task(post.taskId);
      if (!post.applied || !task || post.fields.status === undefined) continue;
      showTask(post.jobId, task, post.fields.status, post.fields.message ?? "");
      const job = Number(post.jobId);
      const answered = post.fields.status === "200" || post.fields.status === "300";
      if (task.kind === "hardware" && answered && !ended.has(job) && !answeredAt.has(job)) {
        answeredAt.set(job, Date.now());
      }
    }
    postsShown = sim.statusPosts.length;
  };

  const endJob = (jobId: number) => {
    const job = sim.job(jobId)!;
    const before = new Map(job.tasks.map((t) => [t.taskId, t.status]));
    sim.endBooking(jobId);
    ended.add(jobId);
    say(`job ${jobId}'s booking ends: the dashboard re-issues its tasks as cleanup`);
    for (const task of job.tasks) {
      if (before.get(task.taskId) !== task.status) showTask(jobId, task, "0", "cleanup");
    }
  };

  for (;;) {
    for (const p of PLAN) {
      if (!added.has(p.job) && Date.now() - t0 >= p.startIn * 1000) addJob(p);
    }
    const bookings = await demo.showBookings();
    showPosts();
    demo.showMail();
    for (const [jobId, at] of answeredAt) {
      if (!ended.has(jobId) && Date.now() - at >= HOLD_MS) endJob(jobId);
    }
    const finished = bookings.filter((b) => ["released", "failed", "cancelled"].includes(b.state));
    const hostsFree = PLAN.every((p) => ended.has(p.job) && !sim.hostsAllocated(p.job));
    if (hostsFree && bookings.length === PLAN.length && finished.length === PLAN.length) {
      return finished.every((b) => b.state === "released") ? 0 : 1;
    }
    if (Date.now() - demo.began > demo.deadlineMs) {
      say("the demo ran out of time");
      return 1;
    }
    await sleep(250);
  }
}
