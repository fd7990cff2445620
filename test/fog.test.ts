import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { FogClient, type FogClientOptions } from "../lib/adapters/fog/fog-client";
import {
  AuthError,
  ConfigError,
  ImagingError,
  NotFoundError,
  ProtocolError,
  TransientError,
} from "../lib/errors";
import { silentLogger } from "../lib/log";
import type { ImagingProgress } from "../lib/ports/imager";
import { Secret } from "../lib/secret";
import { type FogSim, type FogSimOptions, startFogSim } from "../sim/fog-sim";

const API_TOKEN = "YXBpLXRva2VuLXZhbHVl";
const USER_TOKEN = "dXNlci10b2tlbi12YWx1ZQ==";
const ALREADY = "Host is already a member of an active task";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

async function setup(
  options: Partial<FogSimOptions> = {},
  clientOptions: FogClientOptions = {},
): Promise<{ sim: FogSim; client: FogClient }> {
  const sim = await startFogSim({
    hosts: [
      { name: "pod1", mac: "AA:BB:CC:00:00:01", ip: "10.0.0.1" },
      { name: "pod10", mac: "aa:bb:cc:00:00:10" },
      { name: "xpod1y", mac: "aa:bb:cc:00:00:11" },
    ],
    images: [
      { id: 5, name: "clean", sizeGB: 2, partitions: [1, 1] },
      { id: 6, name: "disabled", sizeGB: 2, enabled: false },
    ],
    apiToken: API_TOKEN,
    userToken: USER_TOKEN,
    timeScale: 20,
    ...options,
  });
  open.push(sim);
  return { sim, client: clientFor(sim.url, clientOptions) };
}

function clientFor(server: string, options: FogClientOptions = {}, logger = silentLogger) {
  return new FogClient(
    {
      server,
      apiKey: new Secret(API_TOKEN),
      userKey: new Secret(USER_TOKEN),
      requestTimeoutSeconds: 5,
    },
    logger,
    { retries: 2, retryMinDelayMs: 5, retryMaxDelayMs: 20, ...options },
  );
}

/** A fetch that answers one canned FOG response, whatever is asked. */
function cannedFetch(status: number, body: string): typeof fetch {
  return async () =>
    new Response(body === "" ? null : body, {
      status,
      headers: { "content-type": "application/json" },
    });
}

async function waitFor<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
}

function routes(sim: FogSim): string[] {
  return sim.requests.map((request) => `${request.method} ${request.route} ${request.status}`);
}

describe("FogClient.findHost", () => {
  it("picks the exact name among FOG's substring matches", async () => {
    // The fuzzy matches come first in FOG's answer, so taking the first host would be wrong.
    const { sim, client } = await setup({
      hosts: [
        { name: "pod10", mac: "aa:bb:cc:00:00:10" },
        { name: "xpod1y", mac: "aa:bb:cc:00:00:11" },
        { name: "pod1", mac: "AA:BB:CC:00:00:01", ip: "10.0.0.1" },
      ],
    });
    const host = await client.findHost("pod1");
    expect(host).toEqual({
      id: "3",
      name: "pod1",
      mac: "aa:bb:cc:00:00:01",
      ip: "10.0.0.1",
      deployed: null,
    });
    expect(routes(sim)).toEqual(["GET host/search/pod1 200"]);
    expect((await client.findHost("pod10")).id).toBe("1");
  });

  it("finds a host whatever the case of its name, as FOG's search and duplicate check do", async () => {
    const { sim, client } = await setup({
      hosts: [
        { name: "Pod-Caps1", mac: "aa:bb:cc:00:00:21" },
        { name: "Pod-Caps", mac: "aa:bb:cc:00:00:20" },
      ],
    });
    expect(await client.findHost("pod-caps")).toMatchObject({ id: "2", name: "Pod-Caps" });
    expect(await client.findHost("POD-CAPS")).toMatchObject({ id: "2" });
    expect(routes(sim)).toEqual(["GET host/search/pod-caps 200", "GET host/search/POD-CAPS 200"]);
  });

  it("refuses two FOG hosts whose names differ only by case, naming both", async () => {
    const body = JSON.stringify({
      count: "2",
      hosts: [
        { id: "4", name: "pod-caps", primac: "aa:00:00:00:00:04" },
        { id: "9", name: "Pod-Caps", primac: "aa:00:00:00:00:09" },
      ],
    });
    const client = clientFor("http://127.0.0.1:9/fog/", { fetch: cannedFetch(200, body) });
    // Even the exact spelling is refused: FOG itself takes the two for one name.
    const error = await client.findHost("pod-caps").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/"pod-caps" \(id 4\).*"Pod-Caps" \(id 9\)/);
    expect((error as Error).message).toMatch(/differ only by case/);
  });

  it("answers NotFoundError naming the host when only fuzzy matches exist", async () => {
    const { client } = await setup();
    await expect(client.findHost("pod")).rejects.toThrow(NotFoundError);
    await expect(client.findHost("pod")).rejects.toThrow(/"pod"/);
  });

  it("refuses a name FOG 1.5 cannot hold before calling it", async () => {
    const { sim, client } = await setup();
    const error = await client.findHost("fog-virtualPod-5.1").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/fog-virtualPod-5\.1.*longer than 15 characters/);
    await expect(client.findHost("pod 1")).rejects.toThrow(ConfigError);
    expect(sim.requests).toEqual([]);
  });

  it("escapes the search term into one path segment", async () => {
    const { sim, client } = await setup({ hosts: [{ name: "a#b", mac: "aa:bb:cc:dd:ee:ff" }] });
    expect((await client.findHost("a#b")).name).toBe("a#b");
    expect(sim.requests[0]?.route).toBe("host/search/a%23b");
  });
});

describe("FogClient.listHosts", () => {
  it("lists every host with FOG's strings turned into the port's types", async () => {
    const { client } = await setup();
    const hosts = await client.listHosts();
    expect(hosts.map((host) => host.name)).toEqual(["pod1", "pod10", "xpod1y"]);
    expect(hosts[1]).toEqual({
      id: "2",
      name: "pod10",
      mac: "aa:bb:cc:00:00:10",
      ip: null,
      deployed: null,
    });
  });

  it("reads ids with spaces or zero-filled, and real deploy timestamps", async () => {
    const body = JSON.stringify({
      count: "2",
      hosts: [
        {
          id: " 012",
          name: "a",
          ip: "",
          primac: "AA:00:00:00:00:01",
          deployed: "2024-05-01 10:00:00",
        },
        { id: "13", name: "b", primac: "", deployed: "0000-00-00 00:00:00" },
      ],
    });
    const client = clientFor("http://127.0.0.1:9/fog/", { fetch: cannedFetch(200, body) });
    expect(await client.listHosts()).toEqual([
      { id: "12", name: "a", mac: "aa:00:00:00:00:01", ip: null, deployed: "2024-05-01 10:00:00" },
      { id: "13", name: "b", mac: null, ip: null, deployed: null },
    ]);
  });

  it("works when the configured web root lacks its final slash", async () => {
    const { sim } = await setup();
    const client = clientFor(sim.url.replace(/\/$/, ""));
    expect(await client.listHosts()).toHaveLength(3);
    expect(sim.requests[0]?.path).toBe("/fog/host");
  });
});

describe("FogClient.deploy", () => {
  it("sets the image, then creates a deploy task", async () => {
    const { sim, client } = await setup();
    await client.deploy("1", 5, "laas booking 42");
    expect(routes(sim)).toEqual(["PUT host/1/edit 200", "POST host/1/task 200"]);
    expect(sim.hosts()[0]?.imageId).toBe(5);
    expect(sim.tasks()).toEqual([
      expect.objectContaining({ hostName: "pod1", typeId: 1, stateId: 1, name: "laas booking 42" }),
    ]);
  });

  it("cancels the active task and creates the deploy again when the host is busy", async () => {
    const { sim, client } = await setup();
    await client.deploy("1", 5, "first");
    sim.requests.length = 0;
    await client.deploy("1", 5, "second");
    expect(routes(sim)).toEqual([
      "PUT host/1/edit 200",
      "POST host/1/task 500",
      "DELETE host/1/cancel 200",
      "POST host/1/task 200",
    ]);
    expect(sim.tasks().map((task) => [task.name, task.stateId])).toEqual([
      ["first", 5],
      ["second", 1],
    ]);
  });

  it("gives up after one cancel when FOG still reports an active task", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(2, 500, {
      method: "POST",
      route: "host/1/task",
      body: { error: ALREADY },
    });
    const error = await client.deploy("1", 5, "t").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ImagingError);
    expect((error as Error).message).toContain(ALREADY);
    expect(routes(sim)).toEqual([
      "PUT host/1/edit 200",
      "POST host/1/task 500",
      "DELETE host/1/cancel 200",
      "POST host/1/task 500",
    ]);
  });

  it("reports FOG's message when the image is not valid or not enabled", async () => {
    const { sim, client } = await setup();
    await expect(client.deploy("1", 77, "t")).rejects.toThrow(ImagingError);
    await expect(client.deploy("1", 77, "t")).rejects.toThrow(/Image is not valid/);
    await expect(client.deploy("2", 6, "t")).rejects.toThrow(/Image is not enabled/);
    expect(sim.tasks()).toEqual([]);
  });

  it("reports FOG's message when setting the image fails", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(1, 500, { method: "PUT", body: { error: "Failed to save" } });
    await expect(client.deploy("1", 5, "t")).rejects.toThrow(
      /set image 5 on host 1: Failed to save/,
    );
    expect(sim.tasks()).toEqual([]);
  });

  it("turns a 501 invalid tasking type into a ProtocolError with FOG's message", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(1, 501, {
      method: "POST",
      body: { error: "Invalid tasking type passed" },
    });
    const error = await client.deploy("1", 5, "t").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toMatch(/501.*Invalid tasking type passed/);
  });

  it("looks before asking again for a task whose creation failed: none there, so it asks", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(1, 503, { method: "POST" });
    await client.deploy("1", 5, "t");
    expect(routes(sim)).toEqual([
      "PUT host/1/edit 200",
      "POST host/1/task 503",
      "GET task/current 200",
      "POST host/1/task 200",
    ]);
    expect(sim.tasks().map((task) => [task.name, task.stateId])).toEqual([["t", 1]]);
  });

  it("adopts the task FOG made when the answer to its creation was lost", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(1, 500, { method: "POST", afterWork: true });
    await client.deploy("1", 5, "laas provision booking 7");
    expect(routes(sim)).toEqual([
      "PUT host/1/edit 200",
      "POST host/1/task 500",
      "GET task/current 200",
    ]);
    expect(sim.tasks().map((task) => [task.name, task.stateId])).toEqual([
      ["laas provision booking 7", 1],
    ]);
  });

  it("looks before asking again after a page came instead of the creation's answer", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(1, 200, {
      method: "POST",
      afterWork: true,
      text: "<html><body>Log in</body></html>",
      contentType: "text/html",
    });
    await client.deploy("1", 5, "t");
    expect(routes(sim)).toEqual([
      "PUT host/1/edit 200",
      "POST host/1/task 200",
      "GET task/current 200",
    ]);
    expect(sim.tasks().map((task) => [task.name, task.stateId])).toEqual([["t", 1]]);
  });

  it("adopts the task when the creation's answer never came (FOG hung after making it)", async () => {
    const { sim } = await setup();
    const client = new FogClient(
      {
        server: sim.url,
        apiKey: new Secret(API_TOKEN),
        userKey: new Secret(USER_TOKEN),
        requestTimeoutSeconds: 0.3,
      },
      silentLogger,
      { retries: 2, retryMinDelayMs: 5, retryMaxDelayMs: 20 },
    );
    sim.failNextRequests(1, 200, { method: "POST", afterWork: true, hang: true });
    await client.deploy("1", 5, "t");
    expect(sim.tasks().map((task) => [task.name, task.stateId])).toEqual([["t", 1]]);
    expect(sim.requests.filter((request) => request.method === "POST")).toHaveLength(1);
  });

  it("does not ask again when it cannot look whether the lost creation took place", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(1, 503, { method: "POST" });
    sim.failNextRequests(10, 503, { route: "task/current" });
    await expect(client.deploy("1", 5, "t")).rejects.toThrow(TransientError);
    expect(sim.requests.filter((request) => request.method === "POST")).toHaveLength(1);
  });

  it("answers NotFoundError for an unknown host id", async () => {
    const { client } = await setup();
    await expect(client.deploy("999", 5, "t")).rejects.toThrow(NotFoundError);
    await expect(client.cancel("999")).rejects.toThrow(NotFoundError);
    await expect(client.cancel("abc")).rejects.toThrow(NotFoundError);
  });

  it("refuses an image id that is not a positive integer", async () => {
    const { sim, client } = await setup();
    await expect(client.deploy("1", 0, "t")).rejects.toThrow(ConfigError);
    expect(sim.requests).toEqual([]);
  });

  it("asks FOG to power the host off after imaging only when told: shutdown true, else no key", async () => {
    const posted: unknown[] = [];
    const { sim, client } = await setup(
      {},
      {
        fetch: async (url, init) => {
          if (init?.method === "POST") posted.push(JSON.parse(String(init.body)));
          return fetch(url, init);
        },
      },
    );
    await client.deploy("1", 5, "plain");
    await client.deploy("2", 5, "told not to", { shutdown: false });
    await client.deploy("3", 5, "released", { shutdown: true });
    expect(posted).toEqual([
      { taskTypeID: 1, taskName: "plain" },
      { taskTypeID: 1, taskName: "told not to" },
      { taskTypeID: 1, taskName: "released", shutdown: true },
    ]);
    expect(sim.tasks().map((task) => [task.name, task.shutdown])).toEqual([
      ["plain", false],
      ["told not to", false],
      ["released", true],
    ]);
  });

  it("keeps shutdown when it creates the deploy again after cancelling the host's task", async () => {
    const { sim, client } = await setup();
    await client.deploy("1", 5, "first");
    await client.deploy("1", 5, "second", { shutdown: true });
    expect(sim.tasks().map((task) => [task.name, task.stateId, task.shutdown])).toEqual([
      ["first", 5, false],
      ["second", 1, true],
    ]);
  });

  it('shows a shutdown task\'s field as FOG does: the string "1", "0" without it', async () => {
    const { sim, client } = await setup();
    await client.deploy("1", 5, "released", { shutdown: true });
    await client.deploy("2", 5, "plain");
    const response = await fetch(`${sim.url}task/current`, {
      headers: { "fog-api-token": API_TOKEN, "fog-user-token": USER_TOKEN },
    });
    const { tasks } = (await response.json()) as { tasks: { name: string; shutdown: unknown }[] };
    expect(tasks.map((task) => [task.name, task.shutdown])).toEqual([
      ["released", "1"],
      ["plain", "0"],
    ]);
  });
});

describe("FOG sim: a task body's shutdown", () => {
  it("is read as PHP reads it, never refused, as FOG 1.5 does", async () => {
    const { sim, client } = await setup();
    await client.deploy("1", 5, "image set");
    await client.cancel("1");
    const cases: [unknown, boolean][] = [
      [true, true],
      [1, true],
      ["1", true],
      ["false", true],
      [{}, true],
      [false, false],
      [0, false],
      ["0", false],
      ["", false],
      [null, false],
      [[], false],
    ];
    const headers = {
      "fog-api-token": API_TOKEN,
      "fog-user-token": USER_TOKEN,
      "content-type": "application/json",
    };
    for (const [shutdown, expected] of cases) {
      const taskName = JSON.stringify(shutdown);
      const created = await fetch(`${sim.url}host/1/task`, {
        method: "POST",
        headers,
        body: JSON.stringify({ taskTypeID: 1, taskName, shutdown }),
      });
      expect([taskName, created.status]).toEqual([taskName, 200]);
      expect([taskName, sim.tasks().at(-1)?.shutdown]).toEqual([taskName, expected]);
      await client.cancel("1");
    }
  });
});

describe("FogClient.progress", () => {
  it("follows queued, checked in, in progress, then gone, and the host's deployed changes", async () => {
    const { sim, client } = await setup();
    expect(await client.progress("1")).toBeNull();
    await client.deploy("1", 5, "t");

    const queued = await client.progress("1");
    expect(queued).toMatchObject({ stateId: 1, stateName: "Queued", percent: 0 });
    expect(queued?.taskId).toMatch(/^\d+$/);

    expect(sim.networkBoot("pod1")).toBe(true);
    expect(await client.progress("1")).toMatchObject({ stateId: 2, stateName: "Checked In" });

    const seen: ImagingProgress[] = [];
    await waitFor(
      async () => {
        const progress = await client.progress("1");
        if (progress) seen.push(progress);
        return progress;
      },
      (progress) => progress === null,
    );
    const running = seen.filter((progress) => progress.stateId === 3);
    expect(running.length).toBeGreaterThan(0);
    expect(running[0]?.stateName).toBe("In-Progress");
    for (const progress of running) {
      expect(progress.percent).toBeGreaterThanOrEqual(0);
      expect(progress.percent).toBeLessThanOrEqual(100);
    }
    expect(Math.max(...running.map((progress) => progress.percent))).toBeGreaterThan(0);
    expect((await client.findHost("pod1")).deployed).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it("stays put for a stalled host", async () => {
    const { sim, client } = await setup({ timeScale: 100 });
    await client.deploy("1", 5, "t");
    sim.stallHost("pod1");
    sim.networkBoot("pod1");
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await client.progress("1")).toMatchObject({ stateId: 2, percent: 0 });
  });

  it("parses FOG's string fields: percent text, zero-filled pct, padded ids", async () => {
    const task = {
      id: "7",
      name: "laas provision booking 12",
      hostID: " 3",
      typeID: "1",
      stateID: "3",
      percent: "45.00",
      pct: "0000000045",
      bpm: "  8.00GB/min",
      timeElapsed: " 00:01:02",
      dataCopied: "  1.20 GiB",
      state: { id: "3", name: "In-Progress" },
    };
    const other = { ...task, id: "8", hostID: "30", percent: "99.00" };
    const body = JSON.stringify({ count: 2, tasks: [other, task] });
    const client = clientFor("http://127.0.0.1:9/fog/", { fetch: cannedFetch(200, body) });
    expect(await client.progress("3")).toEqual({
      taskId: "7",
      hostId: "3",
      taskName: "laas provision booking 12",
      stateId: 3,
      stateName: "In-Progress",
      percent: 45,
    });
    const pctOnly = JSON.stringify({ count: 1, tasks: [{ ...task, percent: "", state: null }] });
    const fallback = clientFor("http://127.0.0.1:9/fog/", { fetch: cannedFetch(200, pctOnly) });
    expect(await fallback.progress("003")).toEqual({
      taskId: "7",
      hostId: "3",
      taskName: "laas provision booking 12",
      stateId: 3,
      stateName: "In-Progress",
      percent: 45,
    });
  });

  it("matches a task's zero-filled hostID to its host, next to another host's task", async () => {
    const task = (id: string, hostID: string, name: string) => ({
      id,
      name,
      hostID,
      stateID: "3",
      percent: "50.00",
      state: { id: "3", name: "In-Progress" },
    });
    const body = JSON.stringify({
      count: "2",
      tasks: [task("8", "4", "other host"), task("7", "003", "ours")],
    });
    const client = clientFor("http://127.0.0.1:9/fog/", { fetch: cannedFetch(200, body) });
    expect(await client.progress("3")).toMatchObject({
      taskId: "7",
      hostId: "3",
      taskName: "ours",
    });
    expect(await client.progress("4")).toMatchObject({ taskId: "8", taskName: "other host" });
    expect((await client.activeTasks()).map((t) => t.hostId).sort()).toEqual(["3", "4"]);
  });

  it("lists every host's active task in one request, the newest where FOG lists two", async () => {
    const task = (id: string, hostID: string, stateID: string) => ({
      id,
      name: `task ${id}`,
      hostID,
      stateID,
      percent: "10.00",
      state: { id: stateID, name: "" },
    });
    const body = JSON.stringify({
      count: 5,
      // Host 4 shows an older task beside its newer one; host 5's task has completed (state 4),
      // host 7's has failed (state 6, newer FOG): neither is active, should FOG list them.
      tasks: [
        task("9", "4", "3"),
        task("3", "04", "1"),
        task("11", "6", "2"),
        task("12", "5", "4"),
        task("13", "7", "6"),
      ],
    });
    const calls: string[] = [];
    const client = clientFor("http://127.0.0.1:9/fog/", {
      fetch: async (url, init) => {
        calls.push(`${init?.method ?? "GET"} ${String(url)}`);
        return cannedFetch(200, body)(url, init);
      },
    });
    const active = await client.activeTasks();
    expect(calls).toEqual(["GET http://127.0.0.1:9/fog/task/current"]);
    expect(active.map((t) => [t.hostId, t.taskId, t.stateName]).sort()).toEqual([
      ["4", "9", "In-Progress"],
      ["6", "11", "Checked In"],
    ]);
  });

  it("starts at most queueSize transfers; the next host waits checked in", async () => {
    const hosts = ["q1", "q2", "q3"].map((name, index) => ({
      name,
      mac: `aa:00:00:00:00:0${index}`,
    }));
    const { sim, client } = await setup({
      hosts,
      queueSize: 2,
      timeScale: 50,
      images: [{ id: 5, name: "clean", sizeGB: 4 }],
    });
    for (const id of ["1", "2", "3"]) await client.deploy(id, 5, `t${id}`);
    for (const host of hosts) sim.networkBoot(host.name);

    const all = () => Promise.all(["1", "2", "3"].map((id) => client.progress(id)));
    const states = (list: (ImagingProgress | null)[]) => list.map((p) => p?.stateId ?? null);

    const twoRunning = await waitFor(
      all,
      (list) => states(list).filter((s) => s === 3).length === 2,
    );
    expect(states(twoRunning).sort()).toEqual([2, 3, 3]);
    const waiting = states(twoRunning).indexOf(2);

    // The waiting host starts only once one of the two others has finished.
    const started = await waitFor(all, (list) => list[waiting]?.stateId === 3);
    expect(states(started).filter((s) => s === null).length).toBeGreaterThanOrEqual(1);
    expect(sim.tasks().filter((task) => task.stateId === 4).length).toBeGreaterThanOrEqual(1);
  });
});

describe("FogClient errors", () => {
  it("tells a refused API token (403) from a refused user token (401), without the tokens", async () => {
    const { sim, client } = await setup();
    sim.setTokens({ apiToken: "something-else" });
    const apiError = await client.listHosts().catch((caught: unknown) => caught);
    expect(apiError).toBeInstanceOf(AuthError);
    expect((apiError as Error).message).toBe(`FOG refused the API token (403) at ${sim.url}host`);

    sim.setTokens({ apiToken: API_TOKEN, userToken: "something-else" });
    const userError = await client.listHosts().catch((caught: unknown) => caught);
    expect(userError).toBeInstanceOf(AuthError);
    expect((userError as Error).message).toMatch(/user token \(401\)/);

    for (const error of [apiError, userError]) {
      expect((error as Error).message).not.toContain(API_TOKEN);
      expect((error as Error).message).not.toContain(USER_TOKEN);
    }
    // Refused credentials are not retried.
    expect(routes(sim)).toEqual(["GET host 403", "GET host 401"]);
  });

  it("retries a GET after a 5xx or a 429 (a proxy throttling), then succeeds", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(1, 502);
    sim.failNextRequests(1, 429);
    expect(await client.listHosts()).toHaveLength(3);
    expect(routes(sim)).toEqual(["GET host 502", "GET host 429", "GET host 200"]);
  });

  it("gives up with TransientError once the retries are spent", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(10, 503);
    await expect(client.progress("1")).rejects.toThrow(TransientError);
    expect(sim.requests).toHaveLength(3);
  });

  it("answers TransientError when FOG does not answer in time or is unreachable", async () => {
    const silent: Server = createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
    open.push({
      close: () =>
        new Promise<void>((resolve) => {
          silent.closeAllConnections();
          silent.close(() => resolve());
        }),
    });
    const { port } = silent.address() as AddressInfo;
    const slow = new FogClient(
      {
        server: `http://127.0.0.1:${port}/fog/`,
        apiKey: new Secret(API_TOKEN),
        userKey: new Secret(USER_TOKEN),
        requestTimeoutSeconds: 0.2,
      },
      silentLogger,
      { retries: 0 },
    );
    await expect(slow.listHosts()).rejects.toThrow(/did not answer GET .*within 0.2 s/);

    const closed = await startFogSim();
    const url = closed.url;
    await closed.close();
    await expect(clientFor(url, { retries: 0 }).listHosts()).rejects.toThrow(TransientError);
  });

  it("answers ProtocolError for JSON that is not the expected shape, without asking again", async () => {
    const cases: [number, string, RegExp][] = [
      [
        200,
        JSON.stringify({ count: 1, hosts: [{ name: "no id" }] }),
        /unexpected shape.*hosts\.0\.id/,
      ],
      [200, JSON.stringify(null), /unexpected shape/],
      [418, "", /418/],
    ];
    for (const [status, body, message] of cases) {
      let calls = 0;
      const canned = cannedFetch(status, body);
      const client = clientFor("http://127.0.0.1:9/fog/", {
        fetch: (url, init) => {
          calls += 1;
          return canned(url, init);
        },
      });
      const error = await client.listHosts().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ProtocolError);
      expect((error as Error).message).toMatch(message);
      expect(calls).toBe(1);
    }
  });

  it("reads again after a truncated or empty answer, then gives up with TransientError", async () => {
    const { sim, client } = await setup();
    sim.failNextRequests(1, 200, { route: "host", truncate: 60 });
    sim.failNextRequests(1, 200, { route: "host", text: "" });
    expect(await client.listHosts()).toHaveLength(3);
    expect(routes(sim)).toEqual(["GET host 200", "GET host 200", "GET host 200"]);

    sim.failNextRequests(10, 200, { route: "task/current", truncate: 30 });
    const error = await client.activeTasks().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TransientError);
    expect((error as Error).message).toMatch(/garbled|cut short/);
  });

  it("names a server URL without /fog/ (Apache's HTML 404) a configuration error, with a hint", async () => {
    const { sim } = await setup();
    const root = `${new URL(sim.url).origin}/`;
    const client = clientFor(root);
    for (const call of [
      () => client.findHost("pod1"),
      () => client.listHosts(),
      () => client.ping(),
    ]) {
      const error = await call().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message).toContain(`${root}`);
      expect(message).toContain("404");
      expect(message).toContain(`FOG's API is under /fog/ (e.g. ${root}fog/)`);
    }
    // Asked once each: a configuration error is not a blip.
    expect(sim.requests).toHaveLength(3);
  });

  it("names an HTML page where JSON was expected, on every attempt, a configuration error", async () => {
    const html = "<!DOCTYPE html><html><head><title>FOG Project</title></head></html>";
    let calls = 0;
    const client = clientFor("http://127.0.0.1:9/fog/", {
      fetch: async () => {
        calls += 1;
        return new Response(html, {
          status: 200,
          headers: { "content-type": "text/html; charset=UTF-8" },
        });
      },
    });
    const error = await client.listHosts().catch((caught: unknown) => caught);
    // Asked again (a login page may pass by), then taken for what it most likely is.
    expect(calls).toBe(3);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(
      /HTML page \(200\).*http:\/\/127\.0\.0\.1:9\/fog\/host/,
    );
  });

  it("names an HTML page answered to a write a configuration error, not a success", async () => {
    const client = clientFor("http://127.0.0.1:9/", {
      fetch: async () =>
        new Response("<html><body>It works!</body></html>", {
          status: 200,
          headers: { "content-type": "text/html" },
        }),
    });
    await expect(client.cancel("1")).rejects.toThrow(ConfigError);
    await expect(client.cancel("1")).rejects.toThrow(/FOG's API is under \/fog\//);
  });

  it("keeps FOG's own empty 404 a NotFoundError", async () => {
    const { client } = await setup();
    await expect(client.cancel("999")).rejects.toThrow(/FOG has no such object/);
  });

  it("logs each call at debug with method, route, status and duration, never the tokens", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const { sim } = await setup();
    const client = clientFor(sim.url, {}, pino({ level: "debug" }, sink));
    await client.deploy("1", 5, "t");
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const calls = entries.filter((entry) => entry.msg === "fog request");
    expect(calls.map((entry) => [entry.method, entry.route, entry.status])).toEqual([
      ["PUT", "host/1/edit", 200],
      ["POST", "host/1/task", 200],
    ]);
    expect(calls.every((entry) => typeof entry.durationMs === "number")).toBe(true);
    expect(lines.join("")).not.toContain(API_TOKEN);
    expect(lines.join("")).not.toContain(USER_TOKEN);
  });
});

describe("FogClient.ping", () => {
  it("accepts FOG's plain-text status", async () => {
    const { client } = await setup();
    await expect(client.ping()).resolves.toBeUndefined();
  });
});
