/**
 * Steps run twice — a retry after a failure part-way, or a run after a crash — do their side
 * effect once: StartImaging on the FOG simulator (deploy task and reboot counted), with the store
 * failing at the worst moment.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Booking } from "../lib/domain/booking";
import { newHost } from "../lib/domain/host";
import { TransientError } from "../lib/errors";
import { startImaging } from "../lib/lifecycle/imaging";
import { beginProvisioning, claimHost, newBooking } from "../lib/lifecycle/transitions";
import type { PowerTarget } from "../lib/ports/power";
import { dashboardBooking } from "./helpers/bookings";
import { startWatcherLab, type WatcherLab } from "./helpers/watcher-lab";

const HOST = "fog-machine-4";
const INPUT = { bookingId: "11", hostName: HOST, phase: "provision", generation: 1 } as const;

describe("StartImaging run twice", () => {
  let l: WatcherLab;
  afterEach(async () => l?.close());

  async function setUp(): Promise<{ reboots: PowerTarget[] }> {
    // The shipped config's host and clean image, on the FOG simulator.
    l = await startWatcherLab(0, {
      hosts: [{ name: HOST, mac: "52:54:00:00:00:04", ip: "127.0.0.1" }],
      images: [{ id: 1, name: "clean", sizeGB: 1_000 }],
      timeScale: 1,
    });
    const fogHost = await l.imager.findHost(HOST);
    await l.db.store.createHost(newHost(HOST, fogHost));
    const booking: Booking = newBooking(
      dashboardBooking({ id: INPUT.bookingId, resourceId: "50", hostName: HOST }),
      new Date(),
    );
    await l.db.store.createBooking(booking);
    await l.db.store.updateBooking(booking.id, beginProvisioning);
    await l.db.store.updateHost(HOST, claimHost(booking.id));
    const reboots: PowerTarget[] = [];
    l.rt.power = {
      reboot: async (target) => {
        reboots.push(target);
        return { hostKey: "SHA256:before-imaging" };
      },
    };
    return { reboots };
  }

  it("reboots once though recording the host key failed after the reboot", async () => {
    const { reboots } = await setUp();
    // The first write after the reboot (the key it accepted) fails once.
    const store = l.db.store;
    let failed = false;
    l.rt.store = {
      getHost: (name) => store.getHost(name),
      listHosts: () => store.listHosts(),
      createHost: (host) => store.createHost(host),
      deleteHost: (name) => store.deleteHost(name),
      updateHost: (name, change) => {
        if (reboots.length > 0 && !failed) {
          failed = true;
          return Promise.reject(new TransientError("DynamoDB PutItem failed: throttled"));
        }
        return store.updateHost(name, change);
      },
      getBooking: (id) => store.getBooking(id),
      listBookings: () => store.listBookings(),
      createBooking: (booking) => store.createBooking(booking),
      deleteBooking: (id) => store.deleteBooking(id),
      updateBooking: (id, change) => store.updateBooking(id, change),
      getVpnPerson: (key) => store.getVpnPerson(key),
      listVpnPersons: () => store.listVpnPersons(),
      createVpnPerson: (person) => store.createVpnPerson(person),
      updateVpnPerson: (key, change) => store.updateVpnPerson(key, change),
      getJob: (key) => store.getJob(key),
      listJobs: () => store.listJobs(),
      createJob: (record) => store.createJob(record),
      updateJob: (key, change, options) => store.updateJob(key, change, options),
      deleteJob: (key, ifVersion) => store.deleteJob(key, ifVersion),
    };
    await expect(startImaging(l.rt, INPUT)).rejects.toThrow(TransientError);
    // The host network-boots: FOG's client checks in.
    expect(l.fog.networkBoot(HOST)).toBe(true);
    // The retry: the task FOG has is adopted, the reboot is not sent again.
    const started = await startImaging(l.rt, INPUT);
    expect(reboots).toHaveLength(1);
    expect(l.fog.tasks()).toHaveLength(1);
    expect(started.fogHostId).toBe("1");
    // Run again once done, it answers what it recorded.
    expect(await startImaging(l.rt, INPUT)).toEqual(started);
    expect(reboots).toHaveLength(1);
  });

  it("sends the reboot again when the first one was refused (nothing was rebooted)", async () => {
    const { reboots } = await setUp();
    const power = l.rt.power;
    let refused = false;
    l.rt.power = {
      reboot: async (target) => {
        if (!refused) {
          refused = true;
          throw new TransientError("SSH to fog-machine-4 failed: connection refused");
        }
        return power.reboot(target);
      },
    };
    await expect(startImaging(l.rt, INPUT)).rejects.toThrow(TransientError);
    await startImaging(l.rt, INPUT);
    expect(reboots).toHaveLength(1);
    expect(l.fog.tasks()).toHaveLength(1);
  });

  /**
   * Where a process killed between a reboot's intent and its outcome leaves the step: the deploy
   * task made, the reboot asked for. (A refused reboot resets its intent; a kill cannot.)
   */
  async function killedAroundTheReboot(sent: boolean): Promise<{ calls: () => number }> {
    let calls = 0;
    const power = l.rt.power;
    l.rt.power = {
      reboot: async (target) => {
        calls++;
        if (calls === 1) {
          if (sent) await power.reboot(target);
          throw new Error("killed");
        }
        if (sent) throw new TransientError("SSH to fog-machine-4 failed: connection refused");
        return power.reboot(target);
      },
    };
    await expect(startImaging(l.rt, INPUT)).rejects.toThrow("killed");
    await l.db.store.updateBooking(INPUT.bookingId, (b) => {
      const record = b.run?.steps.startImaging;
      if (!b.run || !record) return null;
      const intent = { ...record.intent, rebootRequested: true };
      return {
        ...b,
        run: { ...b.run, steps: { ...b.run.steps, startImaging: { ...record, intent } } },
      };
    });
    return { calls: () => calls };
  }

  it("sends a reboot asked for before a restart again while FOG's task is still queued", async () => {
    const { reboots } = await setUp();
    const { calls } = await killedAroundTheReboot(false);
    expect(reboots).toHaveLength(0);
    // Run again: FOG's task is still queued and the host takes the reboot: it had not had one.
    await startImaging(l.rt, INPUT);
    expect(calls()).toBe(2);
    expect(reboots).toHaveLength(1);
    expect(l.fog.tasks()).toHaveLength(1);
  });

  it("takes a host that does not answer the second reboot to be rebooting", async () => {
    const { reboots } = await setUp();
    const { calls } = await killedAroundTheReboot(true);
    const started = await startImaging(l.rt, INPUT);
    expect(calls()).toBe(2);
    expect(reboots).toHaveLength(1);
    expect(started.fogHostId).toBe("1");
  });

  it("never reboots again once FOG's client has checked in", async () => {
    const { reboots } = await setUp();
    const { calls } = await killedAroundTheReboot(true);
    expect(l.fog.networkBoot(HOST)).toBe(true);
    await startImaging(l.rt, INPUT);
    expect(calls()).toBe(1);
    expect(reboots).toHaveLength(1);
  });
});
