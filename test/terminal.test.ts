/**
 * What `laas listen`, `laas deploy` and `laas logs` show, as processes against simulated labs:
 * not on a terminal, one plain line per event, its time and zone first (no JSON, no empty
 * line); with --json, the log's JSON lines; on a terminal (a pseudo-terminal from util-linux's
 * `script`), one live line per booking with its stage and FOG's percent and partition. A
 * booking's own log is printed, and followed, by `laas logs`; and a deploy on a terminal whose
 * relay does not answer keeps its booking's live line and says above it what it waits for.
 *
 * Three labs, each with its own store, so that the three runs go side by side.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, mkdtemp, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localStepHandlers } from "../lib/app/step-handlers";
import { main } from "../lib/cli/main";
import { bookingAt } from "../sim/dashboard-sim";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { runCommand } from "../sim/subprocess";
import {
  laasBin,
  childEnv as laasEnv,
  laas as run,
  laasRunning as running,
} from "./helpers/laas-cli";
import { type ProcessResult, type RunningProcess, startProcess } from "./helpers/process";
import { waitFor } from "./helpers/wait";

// A zone of its own, so that the lines are seen to name the zone they are in.
const childEnv = { ...laasEnv, TZ: "Europe/Paris" };
const terminalEnv = { ...childEnv, TERM: "xterm", COLUMNS: "400" };

const laas = (args: string[]) => run(args, childEnv);
const laasRunning = (args: string[]): RunningProcess => running(args, childEnv);

const quoted = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * `laas ARGS…` on a pseudo-terminal: util-linux's `script` (-q quiet, -f flush, -e its exit
 * code) gives the command one, and writes what the command drew to its own stdout.
 */
function laasOnTerminal(args: string[]): RunningProcess {
  const command = [process.execPath, laasBin, ...args].map(quoted).join(" ");
  return startProcess("/usr/bin/script", ["-qfec", command, "/dev/null"], {
    cwd: repoRoot,
    env: terminalEnv,
  });
}

/** A plain line: date, time with milliseconds, the zone's name, the level word. */
const PLAIN = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} CES?T (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escapes are removed
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-_]/g;

/** What a terminal shows of `drawn`, near enough: a cursor sent to column 1 starts a line again. */
function onScreen(drawn: string): string {
  return drawn.replaceAll("\u001b[1G", "\r").replace(ANSI, "");
}

/** util-linux's `script` (Debian's bsdutils), which runs a command on a pseudo-terminal. */
async function ensureScript(): Promise<void> {
  if (existsSync("/usr/bin/script")) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = ["-o", "DPkg::Lock::Timeout=300", "install", "-y", "bsdutils"];
  if ((await runCommand("apt-get", install, { cwd: repoRoot, env, timeoutMs: 600_000 })).code) {
    await runCommand("apt-get", ["update"], { cwd: repoRoot, env, timeoutMs: 600_000 });
    await runCommand("apt-get", install, { cwd: repoRoot, env, timeoutMs: 600_000 });
  }
  execFileSync("/usr/bin/script", ["--version"]);
}

/** A booking of the lab's host `index`, due now, with an installer. */
function book(lab: SimulatedLab, id: number, index: number): string {
  const host = lab.inventory[index]!;
  const now = Date.now();
  lab.dashboard.addBooking(
    bookingAt({
      id,
      resource_id: Number(host.resourceId),
      start: new Date(now - 1_000),
      end: new Date(now + 3_600_000),
      installer_name: "Fuel",
    }),
  );
  return host.name;
}

const workDirs: string[] = [];
const labs: SimulatedLab[] = [];

/** A lab with its hosts in its store (filled in this process: it is not what is tested). */
async function labWithHosts(): Promise<SimulatedLab> {
  const workDir = await mkdtemp(join(tmpdir(), "laas-terminal-"));
  workDirs.push(workDir);
  // Imaging slow enough (16 GB in two partitions, at 40 times real speed: some 3.5 s) that the
  // watcher, looking every second, sees FOG's percent.
  const lab = await startSimulatedLab({
    workDir,
    timeScale: 40,
    pollInterval: 1,
    installerMs: 300,
  });
  labs.push(lab);
  const code = await main(["node", "laas", "reset-db", "--host", "--config", lab.configPath], {
    handlers: localStepHandlers(),
    out: () => undefined,
    err: (line) => console.error(line),
  });
  expect(code).toBe(0);
  return lab;
}

/** The listener on a terminal, its one poll's booking (502) provisioned. */
interface TerminalListen {
  host: string;
  result: ProcessResult;
}

/** A deploy --reset on a terminal with the relay down, killed once it has said enough. */
interface RelayDownDeploy {
  host: string;
  port: number;
  shown: string;
}

let plainLab: SimulatedLab;
let terminalListen: Promise<TerminalListen>;
let relayDownDeploy: Promise<RelayDownDeploy>;

async function listenOnTerminal(lab: SimulatedLab): Promise<TerminalListen> {
  const host = book(lab, 502, 1);
  const listening = laasOnTerminal(["listen", "--once", "--config", lab.configPath]);
  const result = await Promise.race([
    listening.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`listen on a terminal: ${listening.stdout()}`)), 60_000),
    ),
  ]).finally(() => listening.kill());
  return { host, result };
}

async function deployRelayDown(lab: SimulatedLab): Promise<RelayDownDeploy> {
  const host = lab.inventory[2]!.name;
  await lab.relay.close();
  const none = join(lab.configPath, "..", "none.yaml");
  const deploying = laasOnTerminal(["deploy", "--reset", "--host", host, "--config", none]);
  try {
    const shown = await waitFor(
      "deploy to say it waits for the relay",
      () => {
        const seen = onScreen(deploying.stdout());
        return /could not be rebooted into its imaging/.test(seen) ? seen : undefined;
      },
      45_000,
    );
    return { host, port: lab.relay.port, shown };
  } finally {
    // The pseudo-terminal goes with script, and the command with it (SIGHUP).
    deploying.kill();
    await deploying.exited;
  }
}

beforeAll(async () => {
  const [first, second, third] = await Promise.all([
    labWithHosts(),
    labWithHosts(),
    labWithHosts(),
    ensureScript(),
  ]);
  plainLab = first;
  // Started now, side by side with the plain runs below; their tests wait for them.
  terminalListen = listenOnTerminal(second);
  relayDownDeploy = deployRelayDown(third);
  terminalListen.catch(() => undefined);
  relayDownDeploy.catch(() => undefined);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([terminalListen, relayDownDeploy]);
  await Promise.allSettled(labs.map((lab) => lab.close()));
  await Promise.all(workDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("not on a terminal", () => {
  let host: string;
  let listened: ProcessResult;
  let listenedJson: ProcessResult;
  let logs: ProcessResult;
  let logsJson: ProcessResult;
  let noLog: ProcessResult;

  beforeAll(async () => {
    const config = plainLab.configPath;
    host = book(plainLab, 501, 0);
    listened = await laas(["listen", "--once", "--config", config]);
    // None of these holds the store but the listener: side by side.
    [listenedJson, logs, logsJson, noLog] = await Promise.all([
      laas(["listen", "--once", "--json", "--config", config]),
      laas(["logs", "501", "--config", config]),
      laas(["logs", "501", "--json", "--config", config]),
      laas(["logs", "9999", "--config", config]),
    ]);
  }, 60_000);

  it("laas listen prints one plain line per event, time and zone first: no JSON, no empty line", () => {
    expect(listened.code, listened.stderr).toBe(0);
    const lines = listened.stdout.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) expect(line).toMatch(PLAIN);
    expect(listened.stdout).not.toContain('{"level"');
    // Each stage of the booking, FOG's percent with its partition among them.
    expect(listened.stdout).toMatch(
      new RegExp(
        `INFO: progress booking=501 host=${host} progress="imaging: \\S+ \\d+%, partition 1"`,
      ),
    );
    expect(listened.stdout).toContain(
      `progress booking=501 host=${host} progress="installing fuel"`,
    );
    // The teardown before the pod is built finds nothing: said as what it is, not as an error.
    expect(listened.stdout).toContain("INFO: domain jumphost is not defined: nothing to remove");
    expect(listened.stdout).not.toMatch(/: error: failed to get/);
  });

  it("laas listen --json prints the log's JSON lines, with ISO times", () => {
    expect(listenedJson.code, listenedJson.stderr).toBe(0);
    const lines = listenedJson.stdout.trimEnd().split("\n");
    for (const line of lines) {
      expect(JSON.parse(line)).toMatchObject({
        service: "laas",
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      });
    }
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain("poll done");
  });

  it("laas logs prints one booking's log as plain lines, or as JSON with --json", () => {
    expect(logs.code, logs.stderr).toBe(0);
    const lines = logs.stdout.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      expect(line).toMatch(PLAIN);
      expect(line).toContain(" booking=501");
    }
    expect(logs.stdout).toContain('progress="installing fuel"');
    expect(logs.stdout).toContain("INFO: execution ended booking=501");
    expect(logsJson.code, logsJson.stderr).toBe(0);
    const records = logsJson.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as object);
    expect(records).toHaveLength(lines.length);
    for (const record of records) expect(record).toMatchObject({ bookingId: "501" });
  });

  it("laas logs, for a booking without a log, names the file it looked for (exit 2)", () => {
    expect(noLog.code).toBe(2);
    const file = join(plainLab.configPath, "..", "..", "log", "bookings", "9999.log");
    expect(noLog.stderr).toContain(`no log for booking 9999: ${file} does not exist`);
    expect(noLog.stdout).toBe("");
  });

  it("laas logs --follow prints what comes until Ctrl-C, then exits 0", async () => {
    const file = join(plainLab.configPath, "..", "..", "log", "bookings", "501.log");
    const following = laasRunning(["logs", "501", "--follow", "--config", plainLab.configPath]);
    try {
      await waitFor("the log printed", () =>
        following.stdout().includes("execution ended") ? true : undefined,
      );
      const line = { level: 40, time: new Date().toISOString(), bookingId: "501", msg: "appended" };
      // Written in two parts: a line is printed once it is whole.
      const text = JSON.stringify(line);
      await appendFile(file, text.slice(0, 20));
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(following.stdout()).not.toContain("appended");
      await appendFile(file, `${text.slice(20)}\n`);
      await waitFor("the appended line", () =>
        following.stdout().includes("WARN: appended booking=501") ? true : undefined,
      );
      // A log emptied (or replaced) is read again from its start.
      await truncate(file, 0);
      await appendFile(file, `${JSON.stringify({ ...line, msg: "after emptying" })}\n`);
      await waitFor("the line of the emptied log", () =>
        following.stdout().includes("WARN: after emptying booking=501") ? true : undefined,
      );
      following.child.kill("SIGINT");
      const exit = await following.exited;
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stdout.split("\n").filter((l) => l.includes("appended"))).toHaveLength(1);
    } finally {
      following.kill();
    }
  }, 30_000);
});

describe("on a terminal", () => {
  it("laas listen keeps one live line per booking: host, stage, FOG's percent and partition", async () => {
    const { host, result } = await terminalListen;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const shown = onScreen(result.stdout);
    expect(shown).toMatch(
      new RegExp(`502 ${host} {2}imaging: \\S+ \\d+%, partition \\d \\[[#-]{20}\\] {2}\\d+s`),
    );
    expect(shown).toContain(`502 ${host}  installing fuel`);
    // Lines, not a log: no JSON and no line per event.
    expect(shown).not.toContain('{"level"');
    expect(shown).not.toContain("INFO: progress");
    // The escapes that move the cursor back over the lines: they are redrawn, not appended.
    expect(result.stdout).toContain("\u001b[1A");
  }, 60_000);

  it("laas deploy, its relay down, says above its live line what it waits for, naming the relay", async () => {
    const { host, port, shown } = await relayDownDeploy;
    const lines = shown.split(/\r?\n|\r/);
    // The warnings, as plain lines above the live one: what it waits for, why, until when.
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `${PLAIN.source}waiting for the relay at 127\\.0\\.0\\.1:${port} ` +
            "\\(connection refused\\); attempt 2 of 3, none started after \\d\\d:\\d\\d:\\d\\d CES?T",
        ),
      ),
    );
    expect(shown).toContain(
      `${host} could not be rebooted into its imaging (FOG's task waits for it): the relay at ` +
        `127.0.0.1:${port} did not answer: connection refused (3 attempts`,
    );
    // The booking's own line: the release under way.
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^manual-${host}-\\d+ ${host} {2}releasing`)),
    );
    // A host never reached has no pod: nothing to remove, no failed step for it.
    expect(shown).not.toContain("state=RemovePod");
  }, 60_000);
});
