/**
 * `laas host …` as an operator runs it — real processes of bin/laas.mjs against a simulated
 * lab — and the guards around it: `laas deploy` takes only a free host, `laas host release` and
 * `laas deploy --reset` clear a host whatever key it shows, and `laas reset-db` refuses, --force
 * or not, while the store is in use (a listener running, a host held, a booking in a phase).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stepHandlers } from "../functions/steps";
import type { ExecutionJournal, ExecutionRecord } from "../lib/adapters/local/journal";
import { type ProcessId, thisProcess } from "../lib/adapters/local/process-identity";
import { openEmbeddedStore } from "../lib/app/embedded-store";
import { main } from "../lib/cli/main";
import { loadInstallerConfig, loadPharosConfig } from "../lib/config/load";
import type { Booking } from "../lib/domain/booking";
import type { Host } from "../lib/domain/host";
import { newBooking } from "../lib/lifecycle/transitions";
import type { Store } from "../lib/ports/store";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { dashboardBooking } from "./helpers/bookings";
import { type ListenerProcess, startListenerProcess } from "./helpers/listener-process";
import { type ProcessResult, runProcess } from "./helpers/process";

const laasBin = join(repoRoot, "bin", "laas.mjs");
const childEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
/** A well-formed fingerprint no simulated host has. */
const STALE_KEY = "SHA256:S3Kz4SttIGXu3UM8gSKd0ea0Q/nwmRBbwhVNsbcCNrE";

/** `node bin/laas.mjs ARGS…` from the repository root, as an operator types it. */
function laasProcess(...args: string[]): Promise<ProcessResult> {
  return runProcess(process.execPath, [laasBin, ...args], {
    cwd: repoRoot,
    env: childEnv,
    timeoutMs: 60_000,
  });
}

/** `laas ARGS…` in this process (set-up and help only). */
async function laas(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(["node", "laas", ...args], {
    handlers: stepHandlers,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

function described(result: ProcessResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/** The store directly, as a test sets up a state (no laas process may be running). */
async function withStore<T>(database: string, work: (store: Store) => Promise<T>): Promise<T> {
  const opened = await openEmbeddedStore(database, { listen: false });
  try {
    return await work(opened.store);
  } finally {
    await opened.close();
  }
}

/** A dashboard booking as the store keeps it, in `state` (generation 1 once past scheduled). */
function storedBooking(id: string, hostName: string, state: Booking["state"]): Booking {
  const booking = newBooking(dashboardBooking({ id, hostName, installer: "Fuel" }), new Date());
  return { ...booking, state, provisionGeneration: state === "scheduled" ? 0 : 1 };
}

describe("laas host --help", () => {
  it("lists the host commands, each with --config", async () => {
    const help = await laas("host", "--help");
    expect(help.code).toBe(0);
    for (const command of ["list", "show", "quarantine", "release", "forget-key"]) {
      expect(help.stdout).toContain(command);
      const own = await laas("host", command, "--help");
      expect(own.code, command).toBe(0);
      expect(own.stdout).toContain("--config <file>");
    }
    expect((await laas("host", "quarantine", "--help")).stdout).toContain("--why <text>");
    // deploy --reset says it forgets the recorded key, as host release does.
    expect((await laas("deploy", "--help")).stdout).toMatch(/recorded\s+key is forgotten/);
  });

  it("laas host alone is a usage error (exit 2)", async () => {
    expect((await laas("host")).code).toBe(2);
    expect((await laas("host", "quarantine", "x", "--config", "nowhere.yaml")).code).toBe(2);
  });
});

describe("laas host on a simulated lab, without a listener", () => {
  let workDir: string;
  let lab: SimulatedLab;
  let config: string;
  let database: string;
  let fuel: string;
  let none: string;
  let quarantined: string;
  let deployed: string;
  let held: string;

  const hostIn = (name: string) => withStore(database, async (store) => store.getHost(name));
  const hostNow = async (name: string): Promise<Host> => {
    const host = await hostIn(name);
    if (!host) throw new Error(`no host ${name}`);
    return host;
  };

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "laas-cli-host-"));
    lab = await startSimulatedLab({ workDir, timeScale: 400, pollInterval: 1 });
    config = lab.configPath;
    database = join(workDir, "db");
    fuel = join(dirname(config), "fuel.yaml");
    none = join(dirname(config), "none.yaml");
    [quarantined, deployed, held] = lab.inventory.map((h) => h.name) as [string, string, string];
  });
  afterAll(async () => {
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("before reset-db, a host command says how to fill the store (exit 2)", async () => {
    const list = await laasProcess("host", "list", "--config", config);
    expect(list.code, described(list)).toBe(0);
    expect(list.stdout).toContain("laas reset-db --host");
    const show = await laasProcess("host", "show", quarantined, "--config", config);
    expect(show.code, described(show)).toBe(2);
    expect(show.stderr).toContain(`no host ${quarantined}`);
    expect(show.stderr).toContain("laas reset-db --host");
    const filled = await laas("reset-db", "--host", "--config", config);
    expect(filled.code, filled.stderr).toBe(0);
  });

  it("host list prints one line per host: state, booking, failure streak, reason", async () => {
    const list = await laasProcess("host", "list", "--config", config);
    expect(list.code, described(list)).toBe(0);
    const lines = list.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^HOST\s+STATE\s+BOOKING\s+FAILURES\s+REASON$/);
    expect(lines).toHaveLength(1 + lab.inventory.length);
    for (const host of lab.inventory) {
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^${host.name}\\s+free\\s+-\\s+0\\s*$`)),
      );
    }
  });

  it("an unknown host is named, with `laas host list` (exit 2), for every host command", async () => {
    const commands = [["show"], ["quarantine", "--why", "x"], ["release"], ["forget-key"]];
    for (const [index, [verb, ...rest]] of commands.entries()) {
      // One as a process, the others in this process (the same main()), to keep the test short.
      const run = index === 0 ? laasProcess : laas;
      const result = await run("host", verb!, "pod-nowhere", ...rest, "--config", config);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain("no host pod-nowhere");
      expect(result.stderr).toContain("`laas host list`");
    }
  });

  it("host quarantine takes a free host out of service with the operator's reason", async () => {
    const result = await laasProcess(
      "host",
      "quarantine",
      quarantined,
      "--why",
      "fans failing; ticket 4711",
      "--config",
      config,
    );
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toContain(`laas host release ${quarantined}`);
    const list = await laasProcess("host", "list", "--config", config);
    expect(list.stdout).toMatch(
      new RegExp(
        `^${quarantined}\\s+quarantined\\s+-\\s+0\\s+quarantined by the operator: fans failing; ticket 4711$`,
        "m",
      ),
    );
    const show = await laasProcess("host", "show", quarantined, "--config", config);
    expect(show.code, described(show)).toBe(0);
    expect(show.stdout).toMatch(/^state:\s+quarantined$/m);
    expect(show.stdout).toMatch(/^holder:\s+none$/m);
    expect(show.stdout).toMatch(/^failure streak:\s+0$/m);
    const fogHost = lab.fog.hosts().find((h) => h.name === quarantined)!;
    expect(show.stdout).toMatch(new RegExp(`^FOG id:\\s+${fogHost.id}$`, "m"));
    expect(show.stdout).toMatch(new RegExp(`^MAC:\\s+${lab.inventory[0]!.mac}$`, "m"));
    expect(show.stdout).toMatch(
      /^ {2}\d{4}-\d\d-\d\dT[\d:.]+Z quarantined: by the operator: fans failing; ticket 4711$/m,
    );
  });

  it("host quarantine refuses a host quarantined already, and a --why that is not one printable line", async () => {
    const again = await laasProcess(
      "host",
      "quarantine",
      quarantined,
      "--why",
      "other",
      "--config",
      config,
    );
    expect(again.code, described(again)).toBe(3);
    expect(again.stderr).toContain("quarantined already");
    expect((await hostNow(quarantined)).reason).toBe(
      "quarantined by the operator: fans failing; ticket 4711",
    );
    for (const why of ["   ", "two\nlines", "bell\u0007", "x".repeat(201)]) {
      // Checked before the store is opened: in this process, to keep the test short.
      const bad = await laas("host", "quarantine", deployed, "--why", why, "--config", config);
      expect(bad.code, bad.stderr).toBe(2);
      expect(bad.stderr).toContain("--why");
    }
    expect((await hostNow(deployed)).state).toBe("free");
  });

  it("deploy refuses a quarantined host (exit 3), pointing at `laas host release`", async () => {
    const tasks = lab.fog.tasks().length;
    const result = await laasProcess("deploy", "--config", fuel, "--host", quarantined);
    expect(result.code, described(result)).toBe(3);
    expect(result.stderr).toContain(`host ${quarantined} is quarantined`);
    expect(result.stderr).toContain(`laas host release ${quarantined}`);
    expect(lab.fog.tasks()).toHaveLength(tasks);
    expect(await hostNow(quarantined)).toMatchObject({ state: "quarantined", bookingId: null });
  });

  it("host quarantine refuses a host a booking holds, naming the booking and what to do", async () => {
    const deploy = await laasProcess("deploy", "--config", fuel, "--host", deployed);
    expect(deploy.code, described(deploy)).toBe(0);
    const before = await hostNow(deployed);
    expect(before.state).toBe("in-use");
    const result = await laasProcess(
      "host",
      "quarantine",
      deployed,
      "--why",
      "x",
      "--config",
      config,
    );
    expect(result.code, described(result)).toBe(3);
    expect(result.stderr).toContain(`held by booking ${before.bookingId} (ready)`);
    expect(result.stderr).toContain(`laas host release ${deployed}`);
    expect(await hostNow(deployed)).toEqual(before);
  });

  it("host show gives the holder, the recorded key with its deploy, the address and the history", async () => {
    const host = await hostNow(deployed);
    const show = await laasProcess("host", "show", deployed, "--config", config);
    expect(show.code, described(show)).toBe(0);
    expect(show.stdout).toMatch(
      new RegExp(`^holder:\\s+booking ${host.bookingId} \\(ready\\)$`, "m"),
    );
    expect(show.stdout).toMatch(new RegExp(`^address:\\s+${lab.inventory[1]!.address}$`, "m"));
    expect(show.stdout).toMatch(/^history:$/m);
    if (host.hostKey) {
      expect(show.stdout).toContain(
        `recorded key:   ${host.hostKey} (of the deploy of ${host.hostKeyDeployed ?? "unknown time"})`,
      );
    }
  });

  it("host forget-key drops the recorded key, with an event in the history", async () => {
    await withStore(database, (store) =>
      store.updateHost(deployed, (h) => ({
        ...h,
        hostKey: STALE_KEY,
        hostKeyDeployed: h.deployed,
      })),
    );
    const result = await laasProcess("host", "forget-key", deployed, "--config", config);
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toContain(`recorded host key ${STALE_KEY} forgotten`);
    const host = await hostNow(deployed);
    expect(host).toMatchObject({ hostKey: null, hostKeyDeployed: null, state: "in-use" });
    expect(host.history.at(-1)).toMatchObject({ event: "key forgotten" });
    expect(host.history.at(-1)?.detail).toContain(STALE_KEY);
    const again = await laasProcess("host", "forget-key", deployed, "--config", config);
    expect(again.code, described(again)).toBe(0);
    expect(again.stdout).toContain("no host key recorded; nothing changed");
    const show = await laasProcess("host", "show", deployed, "--config", config);
    expect(show.stdout).toMatch(/^recorded key:\s+none/m);
  });

  it("reset-db --force refuses while a host is in use or a booking is active, and changes nothing", async () => {
    const before = await withStore(database, async (s) => [
      await s.listHosts(),
      await s.listBookings(),
    ]);
    for (const what of ["--host", "--booking", "--both"]) {
      const run = what === "--host" ? laasProcess : laas;
      const result = await run("reset-db", what, "--force", "--config", config);
      expect(result.code, result.stderr).toBe(3);
      expect(result.stderr).toContain("--force does not override this");
      expect(result.stderr).toContain(`host ${deployed} is in-use`);
      expect(result.stderr).toContain(`laas host release ${deployed}`);
    }
    const after = await withStore(database, async (s) => [
      await s.listHosts(),
      await s.listBookings(),
    ]);
    expect(after).toEqual(before);
  });

  it("host release of a quarantined host whose recorded key is stale reimages it clean and frees it, the key forgotten", async () => {
    // The key on record is of the system FOG deployed last, but the host shows another one (it
    // was reinstalled by hand): the reboot into the clean imaging would refuse that login.
    await withStore(database, (store) =>
      store.updateHost(quarantined, (h) => ({
        ...h,
        hostKey: STALE_KEY,
        hostKeyDeployed: h.deployed,
        failures: 2,
      })),
    );
    const cleanImage = (await loadInstallerConfig(none)).fog.imageId;
    const reboots = lab.hosts.reboots.length;
    const result = await laasProcess("host", "release", quarantined, "--config", config);
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toContain(`recorded host key ${STALE_KEY} forgotten`);
    expect(result.stdout).toContain("failure streak of 2 cleared");
    expect(result.stdout).toContain(`${quarantined}: released`);
    expect(lab.hosts.reboots.slice(reboots).map((r) => r.host)).toEqual([quarantined]);
    expect(lab.fog.hosts().find((h) => h.name === quarantined)?.imageId).toBe(cleanImage);
    const host = await hostNow(quarantined);
    expect(host).toMatchObject({ state: "free", bookingId: null, reason: null, failures: 0 });
    expect(host.hostKey).not.toBe(STALE_KEY);
    const events = host.history.map((e) => e.event);
    expect(events).toContain("key forgotten");
    expect(events).toContain("release by the operator");
  });

  it("deploy --reset, sharing that code, frees a host whose recorded key is stale", async () => {
    await withStore(database, (store) =>
      store.updateHost(deployed, (h) => ({
        ...h,
        hostKey: STALE_KEY,
        hostKeyDeployed: h.deployed,
      })),
    );
    const result = await laasProcess("deploy", "--config", none, "--host", deployed, "--reset");
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toContain(`${deployed}: released`);
    const host = await hostNow(deployed);
    expect(host).toMatchObject({ state: "free", bookingId: null });
    expect(host.hostKey).not.toBe(STALE_KEY);
  });

  it("host release, deploy --reset, deploy and quarantine refuse a host a dashboard booking in a phase holds", async () => {
    await withStore(database, async (store) => {
      await store.createBooking(storedBooking("77", held, "provisioning"));
      await store.updateHost(held, (h) => ({ ...h, state: "in-use", bookingId: "77" }));
    });
    const before = await hostNow(held);
    const tasks = lab.fog.tasks().length;
    for (const command of [
      ["host", "release", held, "--config", config],
      ["deploy", "--reset", "--host", held, "--config", none],
    ]) {
      const result = await laasProcess(...command);
      expect(result.code, described(result)).toBe(3);
      expect(result.stderr).toContain(`held by booking 77, which is provisioning`);
      expect(result.stderr).toContain("wait for it to end");
    }
    const deploy = await laasProcess("deploy", "--host", held, "--config", fuel);
    expect(deploy.code, described(deploy)).toBe(3);
    expect(deploy.stderr).toContain(`host ${held} is in-use (booking 77)`);
    expect(deploy.stderr).toContain("wait for booking 77 (provisioning) to end");
    const quarantine = await laasProcess(
      "host",
      "quarantine",
      held,
      "--why",
      "x",
      "--config",
      config,
    );
    expect(quarantine.code, described(quarantine)).toBe(3);
    expect(quarantine.stderr).toContain("wait for booking 77 to end");
    expect(lab.fog.tasks()).toHaveLength(tasks);
    expect(await hostNow(held)).toEqual(before);
  });

  it("reset-db --booking --force refuses while a host is held by a booking that is gone", async () => {
    // Booking 77 gone (as an earlier reset of the booking table left it): its host is held still.
    await withStore(database, (store) => store.deleteBooking("77"));
    const result = await laasProcess("reset-db", "--booking", "--force", "--config", config);
    expect(result.code, described(result)).toBe(3);
    expect(result.stderr).toContain(`host ${held} is in-use (booking 77)`);
    expect(await hostNow(held)).toMatchObject({ state: "in-use", bookingId: "77" });
  });

  it("host release takes over a host held by a booking that is gone", async () => {
    const result = await laasProcess("host", "release", held, "--config", config);
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toContain(`${held}: released`);
    expect(await hostNow(held)).toMatchObject({ state: "free", bookingId: null });
  });

  it("host release of a host the lab was to clean after a failure takes the cleaning over", async () => {
    // Booking 79 failed after imaging; poll was to start a release run to clean the host.
    await withStore(database, async (store) => {
      await store.createBooking({
        ...storedBooking("79", held, "failed"),
        failure: "InstallerFailed: the installer failed",
        cleanup: "after-provision",
      });
      await store.updateHost(held, (h) => ({
        ...h,
        state: "cleaning",
        bookingId: "79",
        failures: 1,
      }));
    });
    const result = await laasProcess("host", "release", held, "--config", config);
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toContain(`${held}: released`);
    const booking = await withStore(database, (store) => store.getBooking("79"));
    // No second release for it: the operator's release did the cleaning.
    expect(booking).toMatchObject({ state: "failed", cleanup: null, releaseGeneration: 0 });
    expect(await hostNow(held)).toMatchObject({ state: "free", bookingId: null, failures: 0 });
  });

  it("host release waits for a workflow a live process runs on the host, and ends one left by a process that is gone", async () => {
    const name = "booking-80-release-1";
    const record = (owner: ProcessId): ExecutionRecord => ({
      name,
      phase: "release",
      input: { bookingId: "80", hostName: held, phase: "release", generation: 1 },
      status: "RUNNING",
      owner,
      startedAt: new Date().toISOString(),
      stoppedAt: null,
      error: null,
      cause: null,
      position: null,
      stopRequested: null,
      transitions: 0,
      updatedAt: new Date().toISOString(),
      version: 0,
    });
    const withJournal = async <T>(work: (journal: ExecutionJournal) => Promise<T>) => {
      const opened = await openEmbeddedStore(database, { listen: false });
      try {
        return await work(opened.journal);
      } finally {
        await opened.close();
      }
    };
    // This test process is alive: the workflow is being run.
    await withJournal((journal) => journal.create(record(thisProcess())));
    const refused = await laasProcess("host", "release", held, "--config", config);
    expect(refused.code, described(refused)).toBe(3);
    expect(refused.stderr).toContain(`has a workflow running (${name}, in pid ${process.pid})`);
    expect((await hostNow(held)).state).toBe("free");
    // A pid that is gone: nothing runs it, so nothing may resume it once the host is taken over.
    await withJournal((journal) =>
      journal.update(name, (r) => ({ ...r, owner: { pid: 2 ** 22 + 1, startTicks: 1 } })),
    );
    const released = await laasProcess("host", "release", held, "--config", config);
    expect(released.code, described(released)).toBe(0);
    expect((await withJournal((journal) => journal.get(name)))?.status).toBe("ABORTED");
    expect(await hostNow(held)).toMatchObject({ state: "free", bookingId: null });
  });

  it("reset-db --host --force refuses while a booking is in a phase, though no host shows it", async () => {
    // As `reset-db --host --force` used to leave it: the booking provisions, its host freed.
    await withStore(database, (store) =>
      store.createBooking(storedBooking("78", held, "provisioning")),
    );
    const result = await laasProcess("reset-db", "--host", "--force", "--config", config);
    expect(result.code, described(result)).toBe(3);
    expect(result.stderr).toContain(`booking 78 is provisioning on ${held}: wait for it to end`);
    await withStore(database, (store) => store.deleteBooking("78"));
    const now = await laasProcess("reset-db", "--both", "--force", "--config", config);
    expect(now.code, described(now)).toBe(0);
  });
});

describe("laas host and reset-db beside a running listener", () => {
  let workDir: string;
  let lab: SimulatedLab;
  let config: string;
  let database: string;
  let listener: ListenerProcess | null = null;
  /** The host whose installer fails. */
  let failing: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "laas-cli-host-"));
    const shipped = await loadPharosConfig(join(repoRoot, "conf", "pharos.yaml"));
    failing = shipped.inventory.hosts[1]!.name;
    lab = await startSimulatedLab({
      workDir,
      timeScale: 400,
      pollInterval: 1,
      polling: 2,
      installerFails: [failing],
    });
    config = lab.configPath;
    database = join(workDir, "db");
    const filled = await laas("reset-db", "--host", "--config", config);
    expect(filled.code, filled.stderr).toBe(0);
    listener = await startListenerProcess({ configPath: config, database });
  });
  afterAll(async () => {
    await listener?.kill();
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("reset-db --host --force refuses while the listener runs, every host left as it was", async () => {
    const before = await listener!.store.listHosts();
    const result = await laasProcess("reset-db", "--host", "--force", "--config", config);
    expect(result.code, described(result)).toBe(3);
    expect(result.stderr).toContain(`a listener runs on ${database} (pid ${listener!.pid})`);
    expect(result.stderr).toContain("`laas stop`");
    expect(await listener!.store.listHosts()).toEqual(before);
  });

  it("host quarantine and release reach the listener's store; the listener runs the release", async () => {
    const name = lab.inventory[0]!.name;
    const quarantine = await laasProcess(
      "host",
      "quarantine",
      name,
      "--why",
      "burn-in",
      "--config",
      config,
    );
    expect(quarantine.code, described(quarantine)).toBe(0);
    expect((await listener!.store.getHost(name))?.state).toBe("quarantined");
    const release = await laasProcess("host", "release", name, "--config", config);
    expect(release.code, described(release)).toBe(0);
    expect(release.stdout).toContain(`handed to the running listener (pid ${listener!.pid})`);
    expect(release.stdout).toContain(`${name}: released`);
    expect(await listener!.store.getHost(name)).toMatchObject({ state: "free", bookingId: null });
    const list = await laasProcess("host", "list", "--config", config);
    expect(list.stdout).toMatch(new RegExp(`^${name}\\s+free\\s`, "m"));
  });

  it("a deploy that fails after imaging has its host cleaned and freed, the failure counted", async () => {
    const fuel = join(dirname(config), "fuel.yaml");
    const result = await laasProcess("deploy", "--config", fuel, "--host", failing);
    expect(result.code, described(result)).toBe(1);
    expect(result.stdout).toContain(`${failing}: provision failed:`);
    expect(result.stdout).toContain(`${failing}: cleaning the host after the failure`);
    expect(result.stdout).toContain(`${failing}: cleaned and free`);
    const host = await listener!.store.getHost(failing);
    expect(host).toMatchObject({ state: "free", bookingId: null, failures: 1 });
    expect(host?.lastFailure?.event).toBe("failed");
    const list = await laasProcess("host", "list", "--config", config);
    expect(list.stdout).toMatch(new RegExp(`^${failing}\\s+free\\s+-\\s+1\\s*$`, "m"));
  });
});
