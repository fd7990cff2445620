/**
 * The `laas` command as an operator uses it: usage and exit codes, configuration errors, then
 * reset-db, status and deploy against a simulated lab (in-process, through main()), and listen
 * and stop as real processes started the way an operator starts them. `laas host` and the
 * store's guards are in cli-host.test.ts.
 */
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { stepHandlers } from "../functions/steps";
import { type ListenerRecord, openEmbeddedStore } from "../lib/app/embedded-store";
import { main } from "../lib/cli/main";
import { loadInstallerConfig } from "../lib/config/load";
import type { Booking } from "../lib/domain/booking";
import type { Host } from "../lib/domain/host";
import { bookingAt } from "../sim/dashboard-sim";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "../sim/lab";
import {
  type ProcessResult,
  type RunningProcess,
  runProcess,
  startProcess,
} from "./helpers/process";
import { waitFor } from "./helpers/wait";

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface StatusReport {
  listener: ListenerRecord | null;
  hosts: Host[];
  bookings: Booking[];
}

/** `laas ARGS…` in this process, its output captured. */
async function laas(...args: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(["node", "laas", ...args], {
    handlers: stepHandlers,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

async function statusOf(config: string): Promise<StatusReport> {
  const result = await laas("status", "--json", "--config", config);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as StatusReport;
}

const laasBin = join(repoRoot, "bin", "laas.mjs");
const childEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

/** `node bin/laas.mjs ARGS…` from the repository root, as an operator types it. */
function laasProcess(...args: string[]): RunningProcess {
  return startProcess(process.execPath, [laasBin, ...args], { cwd: repoRoot, env: childEnv });
}

function runLaasProcess(...args: string[]): Promise<ProcessResult> {
  return runProcess(process.execPath, [laasBin, ...args], {
    cwd: repoRoot,
    env: childEnv,
    timeoutMs: 30_000,
  });
}

async function newWorkDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "laas-cli-"));
}

describe("usage", () => {
  const commands: [string, string[]][] = [
    ["listen", ["--config <file>", "--drain <seconds>", "--once"]],
    ["deploy", ["--config <file>", "--host <name>", "--reset"]],
    ["stop", ["--config <file>", "--timeout <seconds>"]],
    ["reset-db", ["--config <file>", "--host", "--booking", "--both", "--force"]],
    ["status", ["--config <file>", "--json"]],
    ["host", ["list", "show", "quarantine", "release", "forget-key"]],
  ];

  it("--help lists every command and exits 0", async () => {
    const result = await laas("--help");
    expect(result.code).toBe(0);
    for (const [command] of commands) expect(result.stdout).toContain(command);
  });

  it.each(commands)("%s --help names its options and exits 0", async (command, options) => {
    const result = await laas(command, "--help");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: laas ${command}`);
    for (const option of options) expect(result.stdout).toContain(option);
    const viaHelp = await laas("help", command);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(result.stdout);
  });

  it("no command shows the help as a usage error (exit 2)", async () => {
    const result = await laas();
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Usage: laas");
  });

  it("an unknown command or option is a usage error (exit 2)", async () => {
    const command = await laas("frobnicate");
    expect(command.code).toBe(2);
    expect(command.stderr).toContain("unknown command 'frobnicate'");
    const option = await laas("status", "--frobnicate");
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("unknown option '--frobnicate'");
    const missing = await laas("deploy", "--config", "x.yaml");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--host <name>");
  });

  it("reset-db without --host, --booking or --both says what to give (exit 2)", async () => {
    const result = await laas("reset-db", "--force", "--config", "nowhere.yaml");
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--host, --booking or --both/);
  });
});

describe("configuration errors", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await newWorkDir();
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A copy of the shipped conf/ with one file edited. */
  async function confWith(
    name: string,
    file: string,
    edit: (doc: ReturnType<typeof parseDocument>) => void,
  ): Promise<string> {
    const conf = join(dir, name);
    await cp(join(repoRoot, "conf"), conf, { recursive: true });
    const doc = parseDocument(await readFile(join(conf, file), "utf8"));
    edit(doc);
    await writeFile(join(conf, file), doc.toString());
    return conf;
  }

  it.each([
    ["status"],
    ["reset-db", "--host"],
    ["deploy", "--host", "fog-machine-4"],
    ["stop"],
    ["listen"],
  ])("%s with a missing config file exits 2 naming the file", async (...command) => {
    const missing = join(dir, "absent", "pharos.yaml");
    const result = await laas(...command, "--config", missing);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("configuration error");
    expect(result.stderr).toContain(missing);
    expect(existsSync(join(dir, "absent"))).toBe(false);
  });

  it("a wrong field in pharos.yaml is named with its file (exit 2)", async () => {
    const conf = await confWith("polling", "pharos.yaml", (doc) => doc.set("polling", "often"));
    const pharos = join(conf, "pharos.yaml");
    for (const command of [["status"], ["listen"], ["reset-db", "--booking"]]) {
      const result = await laas(...command, "--config", pharos);
      expect(result.code, command.join(" ")).toBe(2);
      expect(result.stderr).toContain(`${pharos}: polling:`);
      expect(result.stderr).toContain('"often"');
    }
  });

  it("a wrong field in an installer config is named with its file, given directly or through pharos.yaml", async () => {
    const conf = await confWith("image", "fuel.yaml", (doc) =>
      doc.setIn(["fog", "image_id"], "five"),
    );
    const fuel = join(conf, "fuel.yaml");
    const direct = await laas("deploy", "--host", "fog-machine-4", "--config", fuel);
    expect(direct.code).toBe(2);
    expect(direct.stderr).toContain(`${fuel}: fog.image_id:`);
    const throughLab = await laas("listen", "--config", join(conf, "pharos.yaml"));
    expect(throughLab.code).toBe(2);
    expect(throughLab.stderr).toContain(`${fuel}: fog.image_id:`);
  });
});

describe("reset-db, deploy and status on a simulated lab", () => {
  let workDir: string;
  let lab: SimulatedLab;
  let config: string;
  let conf: string;
  beforeAll(async () => {
    workDir = await newWorkDir();
    lab = await startSimulatedLab({ workDir, timeScale: 400, pollInterval: 1 });
    config = lab.configPath;
    conf = dirname(config);
  });
  afterAll(async () => {
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("reset-db --host fills the host table from FOG", async () => {
    const result = await laas("reset-db", "--host", "--config", config);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`hosts: ${lab.inventory.length} added from FOG`);
    const { hosts, bookings } = await statusOf(config);
    expect(hosts.map((h) => h.name)).toEqual(lab.inventory.map((h) => h.name).sort());
    for (const host of hosts) {
      const fogHost = lab.fog.hosts().find((f) => f.name === host.name);
      expect(host).toMatchObject({ state: "free", bookingId: null, fogId: String(fogHost?.id) });
    }
    expect(bookings).toEqual([]);
  });

  it("reset-db --host again refuses without --force (exit 3) and changes nothing", async () => {
    const before = await statusOf(config);
    const refused = await laas("reset-db", "--host", "--config", config);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`${lab.inventory.length} host(s)`);
    expect(refused.stderr).toContain("--force");
    expect(await statusOf(config)).toEqual(before);

    const forced = await laas("reset-db", "--host", "--force", "--config", config);
    expect(forced.code, forced.stderr).toBe(0);
    const after = await statusOf(config);
    expect(after.hosts.map((h) => [h.name, h.state, h.fogId])).toEqual(
      before.hosts.map((h) => [h.name, h.state, h.fogId]),
    );
  });

  it("reset-db --host --force fails (exit 1) when FOG refuses the token, leaving the host table intact", async () => {
    const before = await statusOf(config);
    lab.fog.setTokens({ apiToken: "not-the-lab-token" });
    try {
      const result = await laas("reset-db", "--host", "--force", "--config", config);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^laas: FOG refused the API token/);
    } finally {
      const fuel = await loadInstallerConfig(join(conf, "fuel.yaml"));
      lab.fog.setTokens({ apiToken: fuel.fog.apiKey.reveal() });
    }
    expect(await statusOf(config)).toEqual(before);
  });

  it("deploy with an installer config images the host with its image and leaves the booking ready", async () => {
    const host = lab.inventory[0]!.name;
    const fuel = await loadInstallerConfig(join(conf, "fuel.yaml"));
    const reboots = lab.hosts.reboots.length;
    const result = await laas("deploy", "--config", join(conf, "fuel.yaml"), "--host", host);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    // Power comes from the pharos.yaml beside the installer config: the host was rebooted.
    expect(lab.hosts.reboots.slice(reboots).map((r) => r.host)).toEqual([host]);
    expect(result.stdout).toContain(`${host}: ready`);
    expect(lab.fog.hosts().find((f) => f.name === host)?.imageId).toBe(fuel.fog.imageId);

    const { hosts, bookings } = await statusOf(config);
    expect(bookings).toHaveLength(1);
    expect(bookings[0]).toMatchObject({ hostName: host, state: "ready", installer: "Fuel" });
    expect(hosts.find((h) => h.name === host)).toMatchObject({
      state: "in-use",
      bookingId: bookings[0]!.id,
    });
  });

  it("deploy to a host another booking holds refuses (exit 3) and leaves it alone", async () => {
    const host = lab.inventory[0]!.name;
    const before = await statusOf(config);
    const tasksBefore = lab.fog.tasks().length;
    const result = await laas("deploy", "--config", join(conf, "joid.yaml"), "--host", host);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(`host ${host} is in-use`);
    expect(result.stderr).toContain(before.bookings[0]!.id);
    expect(lab.fog.tasks()).toHaveLength(tasksBefore);
    expect(await statusOf(config)).toEqual(before);
  });

  it("status lists hosts and bookings with their states", async () => {
    const host = lab.inventory[0]!.name;
    const { bookings } = await statusOf(config);
    const result = await laas("status", "--config", config);
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toBe("listener: not running");
    expect(lines).toContainEqual(expect.stringMatching(/^HOST\s+STATE\s+BOOKING/));
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^${host}\\s+in-use\\s+${bookings[0]!.id}`)),
    );
    for (const other of lab.inventory.slice(1)) {
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${other.name}\\s+free\\s`)));
    }
    expect(lines).toContainEqual(expect.stringMatching(/^BOOKING\s+HOST\s+STATE/));
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^${bookings[0]!.id}\\s+${host}\\s+ready\\s.*\\sFuel\\s`)),
    );
  });

  it("reset-db --booking refuses, --force or not, while a booking holds a host (exit 3)", async () => {
    const host = lab.inventory[0]!.name;
    const before = await statusOf(config);
    for (const force of [[], ["--force"]]) {
      const result = await laas("reset-db", "--booking", ...force, "--config", config);
      expect(result.code).toBe(3);
      expect(result.stderr).toContain(`host ${host} is in-use (booking ${before.bookings[0]!.id})`);
      expect(result.stderr).toContain(`laas host release ${host}`);
    }
    expect(await statusOf(config)).toEqual(before);
  });

  it("deploy --reset reimages the host with the config's image and frees it", async () => {
    const host = lab.inventory[0]!.name;
    const none = await loadInstallerConfig(join(conf, "none.yaml"));
    const result = await laas(
      "deploy",
      "--config",
      join(conf, "none.yaml"),
      "--host",
      host,
      "--reset",
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`${host}: released`);
    expect(lab.fog.hosts().find((f) => f.name === host)?.imageId).toBe(none.fog.imageId);
    const { hosts, bookings } = await statusOf(config);
    expect(hosts.find((h) => h.name === host)).toMatchObject({ state: "free", bookingId: null });
    expect(bookings.map((b) => b.state)).toEqual(["released"]);
  });

  it("deploy --reset clears a quarantined host whose recorded key is of a system FOG has replaced", async () => {
    const host = lab.inventory[0]!.name;
    // As a restarted release left hosts before: quarantined, with the key of the system imaged
    // before FOG's last deploy on record (the host now shows another one).
    const opened = await openEmbeddedStore(join(workDir, "db"), { listen: false });
    try {
      await opened.store.updateHost(host, (h) => ({
        ...h,
        state: "quarantined",
        reason: "booking 9 release failed",
        hostKey: "SHA256:S3Kz4SttIGXu3UM8gSKd0ea0Q/nwmRBbwhVNsbcCNrE",
        hostKeyDeployed: "2000-01-01 00:00:00",
      }));
    } finally {
      await opened.close();
    }
    const result = await laas(
      "deploy",
      "--config",
      join(conf, "none.yaml"),
      "--host",
      host,
      "--reset",
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`${host}: released`);
    const { hosts } = await statusOf(config);
    // The stale key was never required: the reboot took the key the host showed. The clean
    // system's key will be recorded at its first login; none is on record for it yet.
    expect(hosts.find((h) => h.name === host)).toMatchObject({
      state: "free",
      reason: null,
      hostKey: null,
      deployed: lab.fog.hosts().find((f) => f.name === host)?.deployed,
    });
  });

  it("reset-db --both --force empties the bookings and refills the hosts", async () => {
    const before = (await statusOf(config)).bookings.length;
    expect(before).toBeGreaterThan(0);
    const result = await laas("reset-db", "--both", "--force", "--config", config);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`bookings: ${before} removed`);
    const { hosts, bookings } = await statusOf(config);
    expect(bookings).toEqual([]);
    expect(hosts.map((h) => h.state)).toEqual(lab.inventory.map(() => "free"));
  });

  it("reset-db --host keeps the inventory's spelling of a name FOG writes in another case", async () => {
    const inventoryFile = join(conf, "inventory.yaml");
    const original = await readFile(inventoryFile, "utf8");
    const first = lab.inventory[0]!.name;
    try {
      await writeFile(
        inventoryFile,
        original.replace(`name: ${first}`, `name: ${first.toUpperCase()}`),
      );
      const result = await laas("reset-db", "--host", "--force", "--config", config);
      expect(result.code, result.stderr).toBe(0);
      // FOG's `fog-machine-…` is the inventory's `FOG-MACHINE-…`: found, and stored as bookings
      // name it.
      expect(result.stdout).toContain(`hosts: ${lab.inventory.length} added from FOG`);
      expect(result.stdout).not.toContain("not registered in FOG");
      const { hosts } = await statusOf(config);
      expect(hosts.map((h) => h.name)).toContain(first.toUpperCase());
      expect(hosts.map((h) => h.name)).not.toContain(first);
    } finally {
      await writeFile(inventoryFile, original);
      await laas("reset-db", "--host", "--force", "--config", config);
    }
  });
});

describe("deploy whose imaging stalls", () => {
  let workDir: string;
  let lab: SimulatedLab;
  beforeAll(async () => {
    workDir = await newWorkDir();
    lab = await startSimulatedLab({ workDir, timeScale: 400, pollInterval: 1, imagingTimeout: 3 });
  });
  afterAll(async () => {
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("fails by the imaging deadline (exit 1), says why, cleans the host, and quarantines it when the cleaning fails too", async () => {
    const host = lab.inventory[1]!.name;
    lab.fog.stallHost(host);
    // The lab config: the host is not in the store yet (deploy adds it) and is rebooted over SSH.
    const result = await laas("deploy", "--config", lab.configPath, "--host", host);
    expect(result.code, result.stdout).toBe(1);
    expect(result.stdout).toMatch(
      new RegExp(
        `${host}: provision failed: ImagingFailed: imaging of ${host} did not finish by its deadline`,
      ),
    );
    // The failed provision left the host dirty: deploy cleans it, as poll does a booking's host.
    expect(result.stdout).toContain(`${host}: cleaning the host after the failure`);
    // Its cleaning stalls the same way: a second failure in a row (quarantine_after 2).
    expect(lab.hosts.reboots.map((r) => r.host)).toEqual([host, host]);
    expect(result.stdout).toMatch(new RegExp(`^${host}: quarantined \\(2 failure`, "m"));
    const { hosts, bookings } = await statusOf(lab.configPath);
    expect(hosts.find((h) => h.name === host)).toMatchObject({ state: "quarantined", failures: 2 });
    expect(bookings.map((b) => b.state)).toEqual(["failed"]);
  });
});

describe("listen and stop as processes", () => {
  let workDir: string;
  let lab: SimulatedLab;
  let config: string;
  let recordPath: string;
  const started: RunningProcess[] = [];

  function listen(): RunningProcess {
    const listener = laasProcess("listen", "--config", config);
    started.push(listener);
    return listener;
  }

  /** Waits for the listener's record; fails at once if the listener exits instead. */
  async function listening(listener: RunningProcess): Promise<ListenerRecord> {
    const exitedEarly = listener.exited.then((r) => {
      throw new Error(`listener exited early (${r.code}): ${r.stdout}${r.stderr}`);
    });
    const record = waitFor("listener.json", async () =>
      existsSync(recordPath)
        ? (JSON.parse(await readFile(recordPath, "utf8")) as ListenerRecord)
        : undefined,
    );
    return Promise.race([record, exitedEarly]);
  }

  beforeAll(async () => {
    workDir = await newWorkDir();
    lab = await startSimulatedLab({ workDir, timeScale: 400, pollInterval: 1, polling: 2 });
    config = lab.configPath;
    recordPath = join(workDir, "db", "listener.json");
    const reset = await laas("reset-db", "--host", "--config", config);
    expect(reset.code, reset.stderr).toBe(0);
  });
  afterAll(async () => {
    for (const each of started) each.kill();
    await Promise.allSettled(started.map((each) => each.exited));
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("a listener provisions a booking; status reaches it; a second listener and stop behave", async () => {
    const listener = listen();
    const record = await listening(listener);
    expect(record.pid).toBe(listener.pid);

    const host = lab.inventory[0]!;
    const now = Date.now();
    lab.dashboard.addBooking(
      bookingAt({
        id: 301,
        resource_id: Number(host.resourceId),
        start: new Date(now - 1_000),
        end: new Date(now + 600_000),
        installer_name: "Compass",
      }),
    );

    // status runs in its own process and must reach the listener's store.
    const report = await waitFor(
      "booking 301 ready in `laas status`",
      async () => {
        const status = await runLaasProcess("status", "--json", "--config", config);
        expect(status.code, status.stderr).toBe(0);
        const parsed = JSON.parse(status.stdout) as StatusReport;
        const booking = parsed.bookings.find((b) => b.id === "301");
        if (booking?.state === "failed") throw new Error(`booking failed: ${booking.failure}`);
        if (booking?.state === "ready") return parsed;
        await sleep(200);
        return undefined;
      },
      40_000,
    );
    expect(report.listener?.pid).toBe(listener.pid);
    expect(report.hosts.find((h) => h.name === host.name)).toMatchObject({
      state: "in-use",
      bookingId: "301",
    });

    const second = await runLaasProcess("listen", "--config", config);
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(`a listener already runs on ${join(workDir, "db")}`);
    expect(second.stderr).toContain(`pid ${listener.pid}`);
    // The refused listener leaves the running one's record alone.
    expect(JSON.parse(await readFile(recordPath, "utf8"))).toEqual(record);

    const stop = await runLaasProcess("stop", "--config", config);
    expect(stop.code, stop.stdout + stop.stderr).toBe(0);
    expect(stop.stdout).toContain(`stopping listener pid ${listener.pid}`);
    expect(stop.stdout).toContain("listener stopped");
    const exit = await listener.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout).toMatch(/listener stopped: \d+ workflow\(s\) finished, 0 handed over/);
    expect(existsSync(recordPath)).toBe(false);

    const again = await runLaasProcess("stop", "--config", config);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain("no listener is running");
  });

  it("beside a running listener, deploy hands its workflow over, and refuses a host in a running phase", async () => {
    const listener = listen();
    await listening(listener);
    const busy = lab.inventory[1]!;
    const now = Date.now();
    lab.dashboard.addBooking(
      bookingAt({
        id: 302,
        resource_id: Number(busy.resourceId),
        start: new Date(now - 1_000),
        end: new Date(now + 600_000),
        installer_name: "Fuel",
      }),
    );
    await waitFor("booking 302's deploy task", () =>
      lab.fog.tasks().some((t) => t.name === "laas provision booking 302") ? true : undefined,
    );
    const fuel = join(dirname(config), "fuel.yaml");
    // A host in a phase the listener runs: refused, and nothing is done to it.
    const refused = await runLaasProcess("deploy", "--config", fuel, "--host", busy.name);
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    expect(refused.stderr).toContain("(booking 302)");
    // A free host: the listener runs the workflow; deploy follows it to its end.
    const free = lab.inventory[2]!;
    // Its imaging held until the reset below has been refused: that deploy must still be running.
    lab.fog.stallHost(free.name);
    const deploying = laasProcess("deploy", "--config", fuel, "--host", free.name);
    started.push(deploying);
    await waitFor("the manual deploy's task", () =>
      lab.fog.tasks().some((t) => t.hostName === free.name) ? true : undefined,
    );
    // While the listener runs that deploy, a reset of the host is refused: it is not taken over.
    const reset = await runLaasProcess("deploy", "--config", fuel, "--host", free.name, "--reset");
    expect(reset.code, reset.stdout + reset.stderr).toBe(3);
    expect(reset.stderr).toContain(`is being deployed`);
    expect(reset.stderr).toContain(`running in pid ${listener.pid}`);
    lab.fog.stallHost(free.name, false);
    const deployed = await deploying.exited;
    expect(deployed.code, deployed.stdout + deployed.stderr).toBe(0);
    expect(deployed.stdout).toContain(`handed to the running listener (pid ${listener.pid})`);
    expect(deployed.stdout).toContain(`${free.name}: ready`);
    expect(listener.stdout()).toContain("execution started, handed over by another process");
    const tasksOf = (host: string) => lab.fog.tasks().filter((t) => t.hostName === host);
    expect(tasksOf(free.name)).toHaveLength(1);
    expect(tasksOf(busy.name)).toHaveLength(1);
    listener.child.kill("SIGTERM");
    expect((await listener.exited).code).toBe(0);
  });

  it("SIGINT stops a listener cleanly", async () => {
    const listener = listen();
    await listening(listener);
    listener.child.kill("SIGINT");
    const exit = await listener.exited;
    expect(exit.code, exit.stderr).toBe(0);
    expect(exit.stdout).toMatch(/listener stopped: \d+ workflow\(s\) finished, 0 handed over/);
    expect(existsSync(recordPath)).toBe(false);
    // The store it kept is the same one: the booking it served is still there.
    const { bookings, listener: running } = await statusOf(config);
    expect(running).toBeNull();
    expect(bookings.find((b) => b.id === "301")?.state).toBe("ready");
  });
});
