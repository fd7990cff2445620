/**
 * What `laas listen`, `laas deploy` and `laas logs` show, as processes against a simulated lab:
 * not on a terminal, one plain line per event, its time and zone first (no JSON, no empty
 * line); with --json, the log's JSON lines; on a terminal (a pseudo-terminal from util-linux's
 * `script`), one live line per booking with its stage and FOG's percent and partition. A
 * booking's own log is printed, and followed, by `laas logs`; and a deploy whose relay does not
 * answer says, while it waits, what it waits for.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { appendFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bookingAt } from "../sim/dashboard-sim";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { runCommand } from "../sim/subprocess";
import {
  type ProcessResult,
  type RunningProcess,
  runProcess,
  startProcess,
} from "./helpers/process";
import { waitFor } from "./helpers/wait";

const laasBin = join(repoRoot, "bin", "laas.mjs");
// A zone of its own, so that the lines are seen to name the zone they are in.
const childEnv = {
  ...process.env,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  TZ: "Europe/Paris",
};

function laas(args: string[]) {
  return runProcess(process.execPath, [laasBin, ...args], {
    cwd: repoRoot,
    env: childEnv,
    timeoutMs: 60_000,
  });
}

function laasRunning(args: string[]): RunningProcess {
  return startProcess(process.execPath, [laasBin, ...args], { cwd: repoRoot, env: childEnv });
}

/** A plain line: date, time with milliseconds, the zone's name, the level word. */
const PLAIN = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} CES?T (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escapes are removed
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-_]/g;

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

const quoted = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

let workDir: string;
let lab: SimulatedLab;
let logDir: string;

/** A booking of the lab's host `index`, due now, with an installer. */
function book(id: number, index: number): string {
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

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), "laas-terminal-"));
  logDir = join(workDir, "log");
  // Imaging slow enough (16 GB in two partitions, at 40 times real speed: some 3.5 s) that the
  // watcher, looking every second, sees FOG's percent.
  [lab] = await Promise.all([
    startSimulatedLab({ workDir, timeScale: 40, pollInterval: 1, installerMs: 300 }),
    ensureScript(),
  ]);
  const reset = await laas(["reset-db", "--host", "--config", lab.configPath]);
  expect(reset.code, reset.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  await lab?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe("not on a terminal", () => {
  let host: string;
  let listened: ProcessResult;
  let listenedJson: ProcessResult;
  let logs: ProcessResult;
  let logsJson: ProcessResult;
  let noLog: ProcessResult;

  beforeAll(async () => {
    host = book(501, 0);
    listened = await laas(["listen", "--once", "--config", lab.configPath]);
    // None of these holds the store but the listener: side by side.
    [listenedJson, logs, logsJson, noLog] = await Promise.all([
      laas(["listen", "--once", "--json", "--config", lab.configPath]),
      laas(["logs", "501", "--config", lab.configPath]),
      laas(["logs", "501", "--json", "--config", lab.configPath]),
      laas(["logs", "9999", "--config", lab.configPath]),
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
    expect(noLog.stderr).toContain(
      `no log for booking 9999: ${join(logDir, "bookings", "9999.log")} does not exist`,
    );
    expect(noLog.stdout).toBe("");
  });
});

describe("laas logs --follow", () => {
  it("--follow prints what comes until Ctrl-C, then exits 0", async () => {
    const file = join(logDir, "bookings", "501.log");
    const following = laasRunning(["logs", "501", "--follow", "--config", lab.configPath]);
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
      following.child.kill("SIGINT");
      const exit = await following.exited;
      expect(exit.code, exit.stderr).toBe(0);
      expect(exit.stdout.split("\n").filter((l) => l.includes("appended"))).toHaveLength(1);
    } finally {
      following.kill();
    }
  }, 30_000);
});

describe("laas listen on a terminal", () => {
  it("keeps one live line per booking: its host, stage, FOG's percent and partition", async () => {
    const host = book(502, 1);
    const command = [process.execPath, laasBin, "listen", "--once", "--config", lab.configPath]
      .map(quoted)
      .join(" ");
    // script gives the command a pseudo-terminal (-q quiet, -f flush, -e its exit code).
    const result = await runProcess("/usr/bin/script", ["-qfec", command, "/dev/null"], {
      cwd: repoRoot,
      env: { ...childEnv, TERM: "xterm", COLUMNS: "160" },
      timeoutMs: 60_000,
    });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const shown = result.stdout.replace(ANSI, "");
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
});

describe("laas deploy, its relay down", () => {
  it("says what it waits for while the relay does not answer, and names the relay", async () => {
    const host = lab.inventory[2]!.name;
    await lab.relay.close();
    const none = join(workDir, "conf", "none.yaml");
    const deploying = laasRunning(["deploy", "--reset", "--host", host, "--config", none]);
    try {
      const waited = await waitFor(
        "deploy to say it waits for the relay",
        () => {
          const out = deploying.stdout();
          return /could not be rebooted into its imaging/.test(out) ? out : undefined;
        },
        30_000,
      );
      const port = lab.relay.port;
      expect(waited).toMatch(
        new RegExp(
          `${PLAIN.source.slice(1)}waiting for the relay at 127\\.0\\.0\\.1:${port} ` +
            "\\(connection refused\\); attempt 2 of 3, none started after \\d\\d:\\d\\d:\\d\\d CES?T",
          "m",
        ),
      );
      expect(waited).toContain(
        `${host} could not be rebooted into its imaging (FOG's task waits for it): the relay at ` +
          `127.0.0.1:${port} did not answer: connection refused (3 attempts`,
      );
      // A host never reached has no pod: nothing to remove, no failed step for it.
      expect(waited).not.toContain("state=RemovePod");
    } finally {
      deploying.kill();
      await deploying.exited;
    }
  }, 60_000);
});
