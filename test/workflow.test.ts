/**
 * Provision and release end to end on the embedded default: the real ASL files on the local
 * engine, the DynamoDB adapter on dynalite, against the simulated lab (dashboard, FOG, SSH hosts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EmbeddedRuntime } from "../lib/app/embedded";
import type { Listener } from "../lib/app/listener";
import type { Booking } from "../lib/domain/booking";
import { bookingAt } from "../sim/dashboard-sim";
import { type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { type LabListener, listenOnLab } from "./helpers/lab-listener";
import { waitFor } from "./helpers/wait";

interface Harness {
  lab: SimulatedLab;
  listening: LabListener;
  embedded: EmbeddedRuntime;
  listener: Listener;
  lines: string[];
  workDir: string;
  close(): Promise<void>;
}

async function harness(
  options: { imagingTimeout?: number; installerFails?: string[] } = {},
): Promise<Harness> {
  const workDir = await mkdtemp(join(tmpdir(), "laas-wf-"));
  const lab = await startSimulatedLab({
    workDir,
    timeScale: 400,
    pollInterval: 1,
    ...(options.imagingTimeout !== undefined ? { imagingTimeout: options.imagingTimeout } : {}),
    ...(options.installerFails ? { installerFails: options.installerFails } : {}),
  });
  const listening = await listenOnLab(lab);
  const h: Harness = {
    lab,
    listening,
    embedded: listening.embedded,
    listener: listening.listener,
    lines: listening.lines,
    workDir,
    close: async () => {
      await h.listening.close();
      await lab.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
  return h;
}

/** A booking on the dashboard for `host` that started a second ago and lasts ten minutes. */
function bookFromNow(
  h: Harness,
  id: number,
  host: { resourceId: string },
  fields: { installer_name?: string; scenario_name?: string; purpose?: string } = {},
): void {
  const now = Date.now();
  h.lab.dashboard.addBooking(
    bookingAt({
      id,
      resource_id: Number(host.resourceId),
      start: new Date(now - 1_000),
      end: new Date(now + 600_000),
      ...fields,
    }),
  );
}

function bookingState(h: Harness, id: string, state: Booking["state"]) {
  return waitFor(`booking ${id} ${state}`, async () => {
    const booking = await h.embedded.runtime.store.getBooking(id);
    if (booking?.state === "failed" && state !== "failed") {
      throw new Error(`booking failed: ${booking.failure}`);
    }
    return booking?.state === state ? booking : undefined;
  });
}

describe("provision and release on the local engine", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(async () => h?.close());

  it("images the host for the booking, then reimages it clean when the booking ends", async () => {
    const host = h.lab.inventory[0]!;
    bookFromNow(h, 101, host, {
      installer_name: "Fuel",
      scenario_name: "os-nosdn-nofeature-ha",
      purpose: "end-to-end",
    });
    const first = await h.listener.pollOnce();
    expect(first?.started).toEqual(["booking-101-provision-1"]);

    const ready = await bookingState(h, "101", "ready");
    expect(ready.progress).toBe("ready");
    const fuelImage = h.embedded.runtime.config.defaultConfigs.get("Fuel")!.fog.imageId;
    const fogHost = h.lab.fog.hosts().find((x) => x.name === host.name)!;
    expect(fogHost.imageId).toBe(fuelImage);
    expect(fogHost.deployed).not.toBe("0000-00-00 00:00:00");
    expect(h.lab.hosts.reboots.map((r) => r.host)).toEqual([host.name]);
    const held = await h.embedded.runtime.store.getHost(host.name);
    expect(held).toMatchObject({ state: "in-use", bookingId: "101" });

    // The pod was built through the relay and the installer ran, detached, to its end.
    const built = h.lab.hostCommands(host.name).map((argv) => argv.join(" "));
    expect(built.some((c) => c.includes("virsh") && c.includes("net-define /dev/stdin"))).toBe(
      true,
    );
    expect(built.some((c) => c.includes("virsh") && c.includes("define /dev/stdin"))).toBe(true);
    expect(built.some((c) => c.includes("domiflist"))).toBe(true);
    expect(built.some((c) => c.startsWith("setsid -f sh -c"))).toBe(true);
    expect(built.some((c) => c.includes("--scenario os-nosdn-nofeature-ha"))).toBe(true);
    expect((await h.embedded.runtime.store.getHost(host.name))?.hostKey).toBe(
      h.lab.hosts.hostKeyFingerprint(host.name),
    );

    // A second poll changes nothing: the phase is not started again.
    const second = await h.listener.pollOnce();
    expect(second?.started).toEqual([]);

    // The booking is cancelled on the dashboard: it vanishes, and the host is taken back.
    const deployedWhenReady = fogHost.deployed;
    h.lab.dashboard.removeBooking(101);
    const third = await h.listener.pollOnce();
    expect(third?.vanished).toEqual(["101"]);
    expect(third?.started).toEqual(["booking-101-release-1"]);
    await bookingState(h, "101", "released");
    const cleanImage = h.embedded.runtime.config.cleanConfig.fog.imageId;
    const cleaned = h.lab.fog.hosts().find((x) => x.name === host.name)!;
    expect(cleaned.imageId).toBe(cleanImage);
    expect(cleaned.deployed).not.toBe(deployedWhenReady);
    expect(await h.embedded.runtime.store.getHost(host.name)).toMatchObject({
      state: "free",
      bookingId: null,
    });
    expect(h.lab.hosts.reboots).toHaveLength(2);
    // Release removed the VMs and networks before rebooting the host into its reimaging.
    const all = h.lab.hostCommands(host.name).map((argv) => argv.join(" "));
    const lastReboot = all.lastIndexOf("reboot");
    const undefines = all
      .map((c, i) => (c.includes("virsh") && c.includes("undefine") ? i : -1))
      .filter((i) => i >= 0);
    expect(undefines.at(-1)).toBeLessThan(lastReboot);
    expect(undefines.at(-1)).toBeGreaterThan(all.findIndex((c) => c.startsWith("setsid")));
  });

  it("releases a booking whose end has come", async () => {
    const host = h.lab.inventory[1]!;
    const now = Date.now();
    h.lab.dashboard.addBooking(
      bookingAt({
        id: 102,
        resource_id: Number(host.resourceId),
        start: new Date(now - 1_000),
        end: new Date(now + 4_000),
      }),
    );
    await h.listener.pollOnce();
    await bookingState(h, "102", "ready");
    await waitFor("end of booking 102", () => (Date.now() > now + 4_000 ? true : undefined));
    const report = await h.listener.pollOnce();
    expect(report?.started).toEqual(["booking-102-release-1"]);
    await bookingState(h, "102", "released");
  });
});

describe("a booking whose imaging never finishes", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ imagingTimeout: 3 });
  });
  afterAll(async () => h?.close());

  it("reaches the failure state by its deadline, with the task cancelled; a second failure cleaning the host quarantines it", async () => {
    const host = h.lab.inventory[0]!;
    h.lab.fog.stallHost(host.name);
    bookFromNow(h, 201, host, { installer_name: "Joid" });
    const started = Date.now();
    await h.listener.pollOnce();
    const failed = await bookingState(h, "201", "failed");
    const took = Date.now() - started;
    expect(failed.failure).toMatch(
      /ImagingFailed: imaging of fog-machine-4 did not finish by its deadline/,
    );
    expect(took).toBeGreaterThanOrEqual(3_000);
    expect(took).toBeLessThan(20_000);
    expect(h.lab.fog.tasks().filter((t) => t.hostName === host.name && t.stateId <= 3)).toEqual([]);
    // Touched (rebooted into imaging): left to be cleaned, its first failure counted.
    expect(await h.embedded.runtime.store.getHost(host.name)).toMatchObject({
      state: "cleaning",
      bookingId: "201",
      failures: 1,
    });
    expect(failed.cleanup).toBe("after-provision");
    // The execution ends after the failure is recorded (and noted on the dashboard).
    await waitFor("the execution to end", async () =>
      (await h.embedded.engine.status("booking-201-provision-1")) === "FAILED" ? true : undefined,
    );
    // The next poll cleans the host; its clean imaging stalls too: the second failure in a row.
    await h.listener.pollOnce();
    await waitFor("the host to be quarantined", async () => {
      const now = await h.embedded.runtime.store.getHost(host.name);
      return now?.state === "quarantined" ? now : undefined;
    });
    expect(await h.embedded.runtime.store.getHost(host.name)).toMatchObject({
      bookingId: "201",
      failures: 2,
    });
    const final = await bookingState(h, "201", "failed");
    expect(final.failure).toMatch(/ImagingFailed.*; cleaning the host then failed: ImagingFailed/);
    h.lab.fog.stallHost(host.name, false);
  });
});

describe("failures before the host is touched, and handing work over", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ imagingTimeout: 120 });
  });
  afterAll(async () => h?.close());

  it("fails a booking for an unknown installer and frees its host untouched", async () => {
    const host = h.lab.inventory[2]!;
    bookFromNow(h, 301, host, { installer_name: "Apex" });
    await h.listener.pollOnce();
    const failed = await bookingState(h, "301", "failed");
    // Refused at poll, before anything: the field is named, the value never repeated.
    expect(failed.failure).toMatch(
      /installer_name names no installer this lab has \(it has: .*Fuel/,
    );
    expect(await h.embedded.runtime.store.getHost(host.name)).toMatchObject({
      state: "free",
      bookingId: null,
    });
    expect(h.lab.hosts.reboots).toEqual([]);
    expect(h.lab.fog.tasks()).toEqual([]);
  });

  it("hands a running provision over to the next listener, which resumes it where it was", async () => {
    const host = h.lab.inventory[0]!;
    h.lab.fog.stallHost(host.name);
    bookFromNow(h, 302, host, { installer_name: "Compass" });
    await h.listener.pollOnce();
    await waitFor("imaging to be under way", async () => {
      const b = await h.embedded.runtime.store.getBooking("302");
      return b?.wait?.event === "imaged" ? b : undefined;
    });
    await h.listening.stopWatching();
    const drained = await h.embedded.engine.drain(0);
    expect(drained.handedOver).toEqual(["booking-302-provision-1"]);
    expect((await h.embedded.runtime.store.getBooking("302"))?.state).toBe("provisioning");
    expect(await h.embedded.engine.status("booking-302-provision-1")).toBe("RUNNING");

    // The next listener: a fresh process's engine finds the execution in the journal.
    await h.listening.close();
    h.listening = await listenOnLab(h.lab, { resetHosts: false });
    h.embedded = h.listening.embedded;
    h.listener = h.listening.listener;
    h.lab.fog.stallHost(host.name, false);
    await bookingState(h, "302", "ready");
    expect(
      h.listening.lines.some(
        (l) => l.includes('"execution resumed"') && l.includes('"at":"AwaitImaging"'),
      ),
    ).toBe(true);
    // Resumed at its wait: no second deploy task, no second reboot.
    expect(h.lab.fog.tasks().filter((t) => t.hostName === host.name)).toHaveLength(1);
    expect(h.lab.hosts.reboots.filter((r) => r.host === host.name)).toHaveLength(1);
    expect(h.lab.fog.hosts().find((x) => x.name === host.name)?.imageId).toBe(
      h.embedded.runtime.config.defaultConfigs.get("Compass")!.fog.imageId,
    );
  });
});

describe("an installer that fails on the host", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ installerFails: ["fog-machine-5"] });
  });
  afterAll(async () => h?.close());

  it("fails the booking with the installer's exit status and log, then cleans the host and frees it", async () => {
    const host = h.lab.inventory.find((x) => x.name === "fog-machine-5")!;
    bookFromNow(h, 401, host, { installer_name: "Joid" });
    await h.listener.pollOnce();
    const failed = await bookingState(h, "401", "failed");
    expect(failed.failure).toMatch(/InstallerFailed: the installer on fog-machine-5 exited with 1/);
    expect(await h.embedded.runtime.store.getHost(host.name)).toMatchObject({
      state: "cleaning",
      failures: 1,
    });
    await waitFor("the failed provision to end", async () =>
      (await h.embedded.engine.status("booking-401-provision-1")) === "FAILED" ? true : undefined,
    );
    await h.listener.pollOnce();
    await waitFor("the host to be cleaned and freed", async () => {
      const now = await h.embedded.runtime.store.getHost(host.name);
      return now?.state === "free" ? now : undefined;
    });
    // Its pod removed and the clean image written; the booking stays failed, for its reason.
    expect(await h.embedded.runtime.store.getHost(host.name)).toMatchObject({ failures: 1 });
    const cleaned = await bookingState(h, "401", "failed");
    expect(cleaned).toMatchObject({ cleanup: null, progress: "failed; host cleaned" });
    expect(cleaned.failure).toMatch(/InstallerFailed/);
  });
});
