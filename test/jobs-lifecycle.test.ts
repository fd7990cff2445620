/**
 * The jobs API's whole lifecycle through the real workflows, on the simulated lab (FOG, bare-metal
 * hosts over sshd, the relay, slapd, an SMTP server) with the strict jobs-API simulator as its
 * dashboard: a job's tasks answered 100 then 200 with their messages (credentials included, in the
 * messages only), network answered 300; the cleanup at the booking's end; a failing job answered
 * 300 with its reason and cleaned all the same; a status post lost and posted again; two pollers
 * taking each task once.
 */
import { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildRuntime } from "../lib/app/build";
import { jobKey } from "../lib/domain/job";
import { jobBookingId } from "../lib/lifecycle/jobs/bookings";
import { NO_SWITCH_ADAPTER } from "../lib/lifecycle/jobs/statuses";
import { poll } from "../lib/lifecycle/poll";
import {
  accessTask,
  hardwareTask,
  type JobsDashboardSim,
  networkTask,
  type SimJob,
  type SimTask,
  snapshotTask,
  softwareTask,
} from "../sim/jobs-dashboard-sim";
import { generateSshKey } from "../sim/sshd";
import { type ListeningHandoverLab, listenOnHandoverLab } from "./helpers/handover-lab";
import { waitFor } from "./helpers/wait";

const SLOW = 240_000;
const USER = 17;

let h: ListeningHandoverLab;
let sim: JobsDashboardSim;
let publicKey: string;
let collaboratorKey: string;
const COLLABORATOR = 18;

beforeAll(async () => {
  h = await listenOnHandoverLab({
    name: "laas-jobs",
    lab: { jobs: { images: { 3: 1, 5: 2 } }, installerMs: 800, imagedBootMs: 200 },
  });
  sim = h.lab.jobsDashboard!;
  publicKey = (await generateSshKey("user17@laptop")).publicKey;
  collaboratorKey = (await generateSshKey("user18@laptop")).publicKey;
}, SLOW);
afterAll(async () => h?.close());

/** Polls until `test` holds (the watcher runs in the background). */
async function pollUntil<T>(
  what: string,
  test: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  return waitFor(
    what,
    async () => {
      await h.listener.pollOnce();
      return (await test()) || undefined;
    },
    150_000,
  );
}

function taskOf(job: SimJob, kind: string, which = 0): SimTask {
  const task = job.tasks.filter((t) => t.kind === kind)[which];
  if (!task) throw new Error(`job ${job.id} has no ${kind} task ${which}`);
  return task;
}

function postsOf(task: SimTask) {
  return sim.statusPosts.filter((p) => p.taskId === task.taskId && p.applied);
}

function statusesPosted(task: SimTask): string[] {
  return postsOf(task).map((p) => p.fields.status ?? "?");
}

async function bindsAs(uid: string, password: string): Promise<boolean> {
  const client = new Client({ url: h.slapd.url, timeout: 5_000 });
  try {
    await client.startTLS({ ca: h.slapd.caPem });
    await client.bind(`uid=${uid},${h.slapd.usersBase}`, password);
    return true;
  } catch {
    return false;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

describe("a job through the jobs API", () => {
  it(
    "is answered 100 then 200 with its messages, network 300; cleaned at its end",
    async () => {
      const host = h.lab.inventory[0]!;
      const job = sim.addJob([
        hardwareTask({ hostLabId: host.resourceId, imageId: 5 }),
        accessTask({ accessType: "vpn", user: USER }),
        accessTask({ accessType: "ssh", user: USER, key: publicKey, hosts: [host.resourceId] }),
        // A collaborator: their own VPN account and key.
        accessTask({ accessType: "vpn", user: COLLABORATOR }),
        accessTask({ accessType: "ssh", user: COLLABORATOR, key: collaboratorKey, hosts: [] }),
        softwareTask({ bookingId: 1, installer: "Fuel", scenario: "os-nosdn-nofeature-ha" }),
        networkTask({
          hostLabId: host.resourceId,
          interfaces: { [host.mac.toLowerCase()]: [{ vlanId: 101, tagged: true }] },
        }),
        snapshotTask({ hostLabId: host.resourceId, dashboardId: 4 }),
      ]);
      const hardware = taskOf(job, "hardware");
      const vpn = taskOf(job, "access", 0);
      const ssh = taskOf(job, "access", 1);
      const software = taskOf(job, "software");
      const theirVpn = taskOf(job, "access", 2);
      const theirSsh = taskOf(job, "access", 3);
      const network = taskOf(job, "network");
      await pollUntil("every provision task answered", () =>
        job.tasks.every((t) => t.status === 200 || t.status === 300),
      );

      // Each work task went 100 (started), then 200 — posted as form fields (a JSON body would
      // have left the task at 0 on this dashboard).
      for (const task of [hardware, vpn, ssh, software, theirVpn, theirSsh]) {
        expect(task.status, `${task.kind} ${task.message}`).toBe(200);
        expect(statusesPosted(task)[0]).toBe("100");
        expect(statusesPosted(task).at(-1)).toBe("200");
        expect(postsOf(task)[0]!.contentType).toMatch(/^application\/x-www-form-urlencoded/);
      }
      expect(network.status).toBe(300);
      expect(network.message).toBe(NO_SWITCH_ADAPTER);
      expect(taskOf(job, "snapshot").status).toBe(300);

      // The host was imaged with the FOG image the lab's image id 5 maps to (Fuel's, 2).
      const bookingId = jobBookingId(job.id, host.resourceId);
      const deploy = h.lab.fog
        .tasks()
        .find((t) => t.name === `laas provision booking ${bookingId}`);
      expect(deploy?.imageId).toBe(2);

      // The messages: the host's address and root password; the VPN account and its password,
      // which the real slapd takes; the key's fingerprint; the installer.
      expect(hardware.message).toContain(
        `${host.name} is ready as ${host.resourceId}-pod at ${host.address}`,
      );
      // The host name the hardware task asked for, set on the host.
      expect(h.lab.hostCommands(host.name)).toContainEqual([
        "hostnamectl",
        "set-hostname",
        `${host.resourceId}-pod`,
      ]);
      const rootPassword = /Root password: (\S+)/.exec(hardware.message)?.[1];
      expect(rootPassword).toBeTruthy();
      const account = /user (\S+), password (\S+)/.exec(vpn.message);
      expect(account, vpn.message).not.toBeNull();
      expect(await bindsAs(account![1]!, account![2]!)).toBe(true);
      // The collaborator's account is theirs, with a password of its own.
      const theirs = /user (\S+), password (\S+)/.exec(theirVpn.message);
      expect(theirs, theirVpn.message).not.toBeNull();
      expect(theirs![1]).not.toBe(account![1]);
      expect(await bindsAs(theirs![1]!, theirs![2]!)).toBe(true);
      expect(theirSsh.message).toMatch(/^Key SHA256:\S+ installed for root on /);
      expect(theirSsh.message).not.toBe(ssh.message);
      expect(ssh.message).toMatch(/^Key SHA256:\S+ installed for root on /);
      expect(software.message).toContain("Fuel (scenario os-nosdn-nofeature-ha)");
      expect(hardware.labToken).toBe(bookingId);
      expect(vpn.labToken).toBe(`vpn-${account![1]}`);
      // The passwords are in the messages only: not in any log line nor in the store.
      const stored = JSON.stringify(await h.embedded.runtime.store.getJob(jobKey(sim.lab, job.id)));
      for (const secret of [rootPassword!, account![2]!, theirs![2]!]) {
        expect(h.lines.join("\n")).not.toContain(secret);
        expect(stored).not.toContain(secret);
      }

      // The booking ends: its tasks come back at 0 as cleanup, and are answered once done.
      sim.endBooking(job.id);
      await pollUntil("the cleanup answered", () => !sim.hostsAllocated(job.id));
      const booking = await h.embedded.runtime.store.getBooking(bookingId);
      expect(booking?.state).toBe("released");
      expect(hardware.status).toBe(200);
      expect(hardware.message).toContain("reimaged clean");
      const cleanTasks = h.lab.fog
        .tasks()
        .filter((t) => t.name === `laas release booking ${bookingId}`);
      expect(cleanTasks).toHaveLength(1);
      // Powered over SSH: left on after its clean image (nothing could start it again).
      expect(cleanTasks[0]?.shutdown).toBe(false);
      expect(hardware.message).toContain("left on");
      await pollUntil("the VPN revoke answered", () => vpn.status === 200);
      expect(vpn.message).toContain("revoked");
      expect(await bindsAs(account![1]!, account![2]!)).toBe(false);
      expect(await bindsAs(theirs![1]!, theirs![2]!)).toBe(false);
      expect(network.status).toBe(200);
      // Answered once done: the job is finished, its booking no longer listed.
      await pollUntil("the job finished", async () => {
        const record = await h.embedded.runtime.store.getJob(jobKey(sim.lab, job.id));
        return record?.finishedAt ?? undefined;
      });
    },
    SLOW,
  );

  it(
    "a job that cannot be served is answered 300 with its reason, and its cleanup still runs",
    async () => {
      const host = h.lab.inventory[1]!;
      // Image 9 is not in pharos.yaml's jobs.images: refused before the host is touched.
      const job = sim.addJob([
        hardwareTask({ hostLabId: host.resourceId, imageId: 9 }),
        accessTask({ accessType: "vpn", user: USER }),
        softwareTask({ bookingId: 2, installer: "Fuel" }),
      ]);
      const hardware = taskOf(job, "hardware");
      await pollUntil("the hardware task answered 300", () => hardware.status === 300);
      expect(hardware.message).toContain("could not be provisioned");
      expect(hardware.message).toContain("image");
      // The lab image id is the dashboard's own, so it may be named; nothing of the lab's config.
      expect(hardware.message).not.toContain("pharos.yaml");
      await pollUntil("the others answered 300", () => job.tasks.every((t) => t.status === 300));
      expect(sim.hostsAllocated(job.id)).toBe(true);

      sim.endBooking(job.id);
      await pollUntil("the cleanup answered", () => !sim.hostsAllocated(job.id));
      expect(hardware.status).toBe(200);
      expect(hardware.message).toContain("never imaged");
      const bookingId = jobBookingId(job.id, host.resourceId);
      expect(h.lab.fog.tasks().some((t) => t.name.endsWith(`booking ${bookingId}`))).toBe(false);
    },
    SLOW,
  );

  it(
    "a status post lost, then refused for a while, is posted again",
    async () => {
      const host = h.lab.inventory[2]!;
      const job = sim.addJob([hardwareTask({ hostLabId: host.resourceId, imageId: 3 })]);
      const hardware = taskOf(job, "hardware");
      // The job is taken; then every request fails for longer than one post's retries.
      await h.listener.pollOnce();
      sim.failNext(1, { kind: "lost" });
      sim.failNext(12, { kind: "status", status: 502 });
      await pollUntil("the hardware task answered 200", () => hardware.status === 200);
      expect(statusesPosted(hardware)).toContain("200");
      // The job has no VPN task: no account was made that nobody would be given.
      const booking = await h.embedded.runtime.store.getBooking(
        jobBookingId(job.id, host.resourceId),
      );
      expect(booking?.access?.vpnUser ?? null).toBeNull();
      sim.endBooking(job.id);
      await pollUntil("the cleanup answered", () => !sim.hostsAllocated(job.id));
    },
    SLOW,
  );

  it(
    "two pollers reading the same listing take each task once",
    async () => {
      const host = h.lab.inventory[3] ?? h.lab.inventory[0]!;
      const job = sim.addJob([
        hardwareTask({ hostLabId: host.resourceId, imageId: 3 }),
        accessTask({ accessType: "vpn", user: USER + 1 }),
      ]);
      const rt = h.embedded.runtime;
      const second = buildRuntime({
        config: rt.config,
        store: rt.store,
        engine: rt.engine,
        logger: rt.logger,
      });
      const [a, b] = await Promise.all([poll(rt), poll(second)]);
      const taken = [...a.tasksTaken, ...b.tasksTaken].filter((t) => t.startsWith(`${job.id}/`));
      expect(taken.sort()).toEqual(job.tasks.map((t) => `${job.id}/${t.taskId} provision`).sort());
      const started = [...a.started, ...b.started].filter((n) => n.includes(`job-${job.id}-`));
      expect(started).toHaveLength(1);
      await pollUntil("the job answered", () => taskOf(job, "hardware").status === 200);
      sim.endBooking(job.id);
      await pollUntil("the cleanup answered", () => !sim.hostsAllocated(job.id));
    },
    SLOW,
  );
});
