/**
 * `laas ui` and `laas listen --ui` as processes: the page served where asked, a port or an
 * address that cannot be served refused with the reason, and Ctrl-C ending them with 0.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { freePort } from "../sim/sshd";
import { laas, laasRunning } from "./helpers/laas-cli";

describe("laas ui", () => {
  let workDir: string;
  let lab: SimulatedLab;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "laas-cli-ui-"));
    lab = await startSimulatedLab({ workDir, timeScale: 400, pollInterval: 1 });
    expect((await laas(["reset-db", "--host", "--config", lab.configPath])).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await lab?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it.each(["abc", "0", "70000"])("--port %j is a usage error naming the option", async (port) => {
    const result = await laas(["ui", "--port", port, "--config", lab.configPath]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      new RegExp(`option '--port <port>' argument '${port}' is invalid`),
    );
  });

  it("refuses an address other machines reach when no token is set", async () => {
    const result = await laas(["ui", "--address", "0.0.0.0", "--config", lab.configPath]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /web\.address: 0\.0\.0\.0 is reachable from other machines.*web\.token/,
    );
  });

  it("says so when its port is taken", async () => {
    const holder = createServer();
    const port = await new Promise<number>((resolve) =>
      holder.listen(0, "127.0.0.1", () => {
        const bound = holder.address();
        resolve(typeof bound === "object" && bound ? bound.port : 0);
      }),
    );
    try {
      const result = await laas(["ui", "--port", String(port), "--config", lab.configPath]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`127.0.0.1:${port} is in use`);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });

  it("serves the page and the metrics until Ctrl-C, then exits 0", async () => {
    const port = await freePort("127.0.0.1");
    const ui = laasRunning(["ui", "--port", String(port), "--config", lab.configPath]);
    await expect
      .poll(() => ui.stdout(), { timeout: 30_000 })
      .toContain(`status page: http://127.0.0.1:${port}/`);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("LaaS — lab status");
    const overview = (await (await fetch(`http://127.0.0.1:${port}/api/overview`)).json()) as {
      hosts: { name: string }[];
    };
    expect(overview.hosts.map((host) => host.name).sort()).toEqual(
      lab.inventory.map((host) => host.name).sort(),
    );
    expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(
      /^laas_hosts\{state="free"\} 3$/m,
    );
    ui.child.kill("SIGINT");
    expect((await ui.exited).code).toBe(0);
  }, 60_000);

  it("is served by the listener itself with listen --ui", async () => {
    const port = await freePort("127.0.0.1");
    const listening = laasRunning([
      "listen",
      "--ui",
      "--ui-port",
      String(port),
      "--config",
      lab.configPath,
    ]);
    try {
      await expect
        .poll(
          async () => {
            const answer = await fetch(`http://127.0.0.1:${port}/api/overview`).catch(() => null);
            return answer?.status ?? null;
          },
          { timeout: 30_000 },
        )
        .toBe(200);
    } finally {
      listening.child.kill("SIGINT");
    }
    expect((await listening.exited).code).toBe(0);
  }, 90_000);
});
