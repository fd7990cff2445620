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
import { openEmbeddedStore } from "../lib/app/embedded-store";
import { STATUS_WIDTH, table, when } from "../lib/cli/status";
import { loadPharosConfig } from "../lib/config/load";
import { OPEN_END } from "../lib/domain/booking";
import { bookingAt } from "../sim/dashboard-sim";
import { repoRoot, type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { childEnv, laas, laasBin, laasRunning } from "./helpers/laas-cli";

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
    ["status", "--watch", "0"],
  ])("%s %s %j is a usage error naming the option", async (command, option, value) => {
    const result = await laas([command, option, value]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`option '(-w, )?${option} [<[]seconds[>\\]]' argument '${value}' is invalid`),
    );
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
  it("status fits 100 columns and gives times with their zone", async () => {
    // A host, and a booking of it a day away with a long purpose (nothing is provisioned).
    expect((await laas(["reset-db", "--host", "--config", lab.configPath])).code).toBe(0);
    const host = lab.inventory[0]!;
    const start = Date.now() + 86_400_000;
    lab.dashboard.addBooking(
      bookingAt({
        id: 901,
        resource_id: Number(host.resourceId),
        start: new Date(start),
        end: new Date(start + 3 * 86_400_000),
        installer_name: "Fuel",
        purpose: "x".repeat(300),
      }),
    );
    expect((await laas(["listen", "--once", "--config", lab.configPath])).code).toBe(0);
    const result = await laas(["status", "--config", lab.configPath], { TZ: "Europe/Paris" });
    expect(result.code, result.stderr).toBe(0);
    const tables = result.stdout.split("\n\n").slice(1, 3).join("\n").split("\n");
    expect(tables).toContainEqual(expect.stringMatching(/^901\s/));
    for (const line of tables) expect([...line].length).toBeLessThanOrEqual(100);
    expect(result.stdout).toMatch(/\d\d-\d\d \d\d:\d\d–(\d\d-\d\d )?\d\d:\d\d CES?T/);
  }, 60_000);

  it("status --watch shows it again until Ctrl-C, then exits 0", async () => {
    const watching = laasRunning(["status", "--watch", "0.5", "--config", lab.configPath]);
    const views = () => watching.stdout().split("\n--- ").length;
    await expect.poll(views, { timeout: 30_000 }).toBeGreaterThan(2);
    watching.child.kill("SIGINT");
    const { code, stdout } = await watching.exited;
    expect(code).toBe(0);
    // Each view is headed by when it was taken, and is whole.
    expect(stdout.startsWith("--- ")).toBe(true);
    expect(stdout.split("listener: ").length - 1).toBeGreaterThanOrEqual(2);
  }, 60_000);
  it("status --watch holds the store only while it reads, not between views", async () => {
    const watching = laasRunning(["status", "--watch", "30", "--config", lab.configPath]);
    await expect.poll(() => watching.stdout().includes("BOOKING"), { timeout: 30_000 }).toBe(true);
    // Between two views another process may own the store (a listener starting, say).
    const { database } = await loadPharosConfig(lab.configPath);
    const owned = await openEmbeddedStore(database, { listen: false });
    expect(owned.owner).toBe(true);
    await owned.close();
    watching.child.kill("SIGINT");
    expect((await watching.exited).code).toBe(0);
  }, 60_000);
});

describe("status's table and times", () => {
  it("cuts a line longer than the width, saying so", () => {
    const rows = [
      ["1", "imaging ".repeat(30)],
      ["2", "short"],
    ];
    const lines = table(["BOOKING", "PROGRESS"], rows, STATUS_WIDTH).split("\n");
    // With no width given (`host list`: an operator's reason is shown whole) nothing is cut.
    const whole = table(["BOOKING", "PROGRESS"], rows).split("\n");
    expect(whole[1]).toBe(`1        ${"imaging ".repeat(30)}`.trimEnd());
    expect(lines.map((line) => [...line].length)).toEqual([17, STATUS_WIDTH, 14]);
    expect(lines[1]?.endsWith("…")).toBe(true);
    expect(lines[2]).toBe("2        short");
  });

  it("names the zone, the end's day when it is another, and both zones across a change", () => {
    expect(when("2026-06-01T11:00:00Z", "2026-06-01T15:00:00Z", "UTC")).toBe(
      "06-01 11:00–15:00 UTC",
    );
    expect(when("2026-06-01T11:00:00Z", "2026-06-03T09:00:00Z", "Europe/Paris")).toBe(
      "06-01 13:00–06-03 11:00 CEST",
    );
    expect(when("2026-03-28T11:00:00Z", "2026-03-30T09:00:00Z", "Europe/Paris")).toBe(
      "03-28 12:00–03-30 11:00 CET–CEST",
    );
    // Open until ended: a job's booking (the jobs API says no end) or a manual one.
    expect(when("2026-06-01T11:00:00Z", OPEN_END, "UTC")).toBe("06-01 11:00–open UTC");
  });
});
