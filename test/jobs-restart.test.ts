/**
 * A job survives its listener: `laas listen` as a real process, SIGKILLed while the job's host is
 * imaging, then started again, finishes the job with one FOG deploy and one reboot, and answers
 * its tasks; and a job whose record the store lost is taken again from `jobs/current`.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stepHandlers } from "../functions/steps";
import { buildRuntime } from "../lib/app/build";
import { main } from "../lib/cli/main";
import { jobKey } from "../lib/domain/job";
import { jobBookingId } from "../lib/lifecycle/jobs/bookings";
import { poll } from "../lib/lifecycle/poll";
import { accessTask, hardwareTask, type JobsDashboardSim } from "../sim/jobs-dashboard-sim";
import { type HandoverLab, startHandoverLab } from "./helpers/handover-lab";
import { listenOnLab } from "./helpers/lab-listener";
import {
  bookingUntil,
  type ListenerProcess,
  startListenerProcess,
} from "./helpers/listener-process";
import { waitFor } from "./helpers/wait";

const SLOW = 180_000;

let h: HandoverLab;
let sim: JobsDashboardSim;
let database: string;

beforeAll(async () => {
  h = await startHandoverLab({
    name: "laas-jobs-restart",
    lab: { jobs: {}, polling: 1, installerMs: 1_000, imagedBootMs: 300 },
  });
  sim = h.lab.jobsDashboard!;
  database = join(h.workDir, "db");
  const quiet = () => undefined;
  const code = await main(["node", "laas", "reset-db", "--host", "--config", h.lab.configPath], {
    handlers: stepHandlers,
    out: quiet,
    err: quiet,
  });
  expect(code).toBe(0);
}, SLOW);
afterAll(async () => h?.close());

describe("a job and a restart", () => {
  it(
    "killed while its host images, the listener started again finishes the job once",
    async () => {
      const host = h.lab.inventory[0]!;
      const job = sim.addJob([
        hardwareTask({ hostLabId: host.resourceId, imageId: 3 }),
        accessTask({ accessType: "vpn", user: 21 }),
      ]);
      const bookingId = jobBookingId(job.id, host.resourceId);
      const reboots = h.lab.hosts.reboots.length;
      let listener: ListenerProcess = await startListenerProcess({
        configPath: h.lab.configPath,
        database,
      });
      try {
        await waitFor(
          "the host imaging",
          () =>
            h.lab.fog
              .tasks()
              .some((t) => t.name === `laas provision booking ${bookingId}` && t.stateId >= 2) ||
            undefined,
          60_000,
        );
        listener.killNow();
        expect((await listener.process.exited).signal).toBe("SIGKILL");
        listener = await startListenerProcess({ configPath: h.lab.configPath, database });
        await bookingUntil(listener, bookingId, "ready", (b) => b.state === "ready", 90_000);
        await waitFor(
          "the job's tasks answered",
          () => job.tasks.every((t) => t.status === 200) || undefined,
          60_000,
        );
        sim.endBooking(job.id);
        await waitFor(
          "the cleanup answered",
          () => !sim.hostsAllocated(job.id) || undefined,
          90_000,
        );
      } finally {
        await listener.stop();
      }
      const deploys = (phase: string) =>
        h.lab.fog.tasks().filter((t) => t.name === `laas ${phase} booking ${bookingId}`).length;
      expect(deploys("provision")).toBe(1);
      expect(deploys("release")).toBe(1);
      // One reboot into the provision's imaging, one into the clean one.
      expect(h.lab.hosts.reboots.slice(reboots).filter((r) => r.host === host.name)).toHaveLength(
        2,
      );
    },
    SLOW,
  );

  it(
    "a job the store lost while its tasks were under way is taken again from jobs/current",
    async () => {
      const host = h.lab.inventory[1]!;
      const job = sim.addJob([hardwareTask({ hostLabId: host.resourceId, imageId: 3 })]);
      const listening = await listenOnLab(h.lab, { resetHosts: false });
      try {
        const rt = listening.embedded.runtime;
        await poll(rt);
        const key = jobKey(sim.lab, job.id);
        const hardware = job.tasks[0]!;
        // Under way on the dashboard (100), and its record gone from the store.
        await waitFor("the task at 100", () => hardware.status === 100 || undefined, 30_000);
        const record = await rt.store.getJob(key);
        await rt.store.deleteJob(key, record!.version);
        // A poller's first poll (a new client, as after a restart) reads jobs/current too.
        const restarted = buildRuntime({
          config: rt.config,
          store: rt.store,
          engine: rt.engine,
          logger: rt.logger,
        });
        const report = await poll(restarted);
        expect(report.tasksTaken).toContain(`${job.id}/${hardware.taskId} provision`);
        const again = await rt.store.getJob(key);
        expect(again?.tasks[hardware.taskId]?.posted?.status).toBe(100);
        await waitFor(
          "the task answered",
          async () => {
            await poll(restarted);
            return hardware.status === 200 || undefined;
          },
          90_000,
        );
        sim.endBooking(job.id);
        await waitFor(
          "the cleanup answered",
          async () => {
            await poll(restarted);
            return !sim.hostsAllocated(job.id) || undefined;
          },
          90_000,
        );
      } finally {
        await listening.close();
      }
    },
    SLOW,
  );
});
