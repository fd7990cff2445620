/**
 * What any command-line tool owes its user, checked on `node bin/laas.mjs` as a process: its
 * version, quiet when its reader leaves, numbers checked, LAAS_CONFIG honoured, each command's
 * help true to what it takes, and `listen --once` failing when its one poll did.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { runProcess } from "./helpers/process";

const laasBin = join(repoRoot, "bin", "laas.mjs");
const childEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

function laas(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runProcess(process.execPath, [laasBin, ...args], {
    cwd: repoRoot,
    env: { ...childEnv, ...env },
    timeoutMs: 60_000,
  });
}

describe("laas, as a command", () => {
  it("--version prints the package's version", async () => {
    const { version } = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as {
      version: string;
    };
    const result = await laas(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(version);
  });

  it.each([
    ["listen", "--drain", "abc"],
    ["listen", "--drain", "-5"],
    ["stop", "--timeout", "soon"],
    ["stop", "--timeout", ""],
  ])("%s %s %j is a usage error naming the option", async (command, option, value) => {
    const result = await laas([command, option, value]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`option '${option} <seconds>' argument '${value}' is invalid`);
  });

  it("takes its config from LAAS_CONFIG, and --config over it", async () => {
    const fromEnv = await laas(["status"], { LAAS_CONFIG: "/nonexistent/from-env.yaml" });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain("/nonexistent/from-env.yaml");
    const given = await laas(["status", "--config", "/nonexistent/given.yaml"], {
      LAAS_CONFIG: "/nonexistent/from-env.yaml",
    });
    expect(given.code).toBe(2);
    expect(given.stderr).toContain("/nonexistent/given.yaml");
    expect(given.stderr).not.toContain("from-env");
  });

  it.each([
    ["status", false],
    ["listen", false],
    ["stop", false],
    ["sweep", false],
    ["deploy", true],
    ["reset-db", true],
  ])("%s --help says which config it takes", async (command, installerToo) => {
    const result = await laas([command, "--help"]);
    expect(result.code).toBe(0);
    const text = result.stdout.replace(/\s+/g, " ");
    expect(text).toContain("lab config (pharos.yaml)");
    expect(text.includes("installer config")).toBe(installerToo);
    expect(text).toContain("env: LAAS_CONFIG");
  });
});

describe("against a simulated lab", () => {
  let workDir: string;
  let lab: SimulatedLab;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "laas-cli-once-"));
    lab = await startSimulatedLab({ workDir, timeScale: 400, pollInterval: 1 });
  }, 60_000);
  afterAll(async () => {
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("status stops quietly, exiting 0, when the reader of its output has gone", async () => {
    const child = spawn(process.execPath, [laasBin, "status", "--config", lab.configPath], {
      cwd: repoRoot,
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    // The reader leaves before a word is written: the first write meets a closed pipe, and the
    // command still has its store to close after it.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  }, 60_000);

  it("exits 1, saying why, when its poll failed (the dashboard refused the token)", async () => {
    // A refused token is not retried: one refusal fails the poll.
    lab.dashboard.failNext(1, 401, {
      body: '{"detail":"Invalid token."}',
      contentType: "application/json",
    });
    const result = await laas(["listen", "--once", "--config", lab.configPath]);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/laas: the poll failed: .*401/);
  }, 90_000);

  it("exits 0 when its poll went through", async () => {
    const result = await laas(["listen", "--once", "--config", lab.configPath]);
    expect(result.code, result.stderr).toBe(0);
  }, 90_000);
});
