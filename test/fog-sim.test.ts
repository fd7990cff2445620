import { afterEach, describe, expect, it } from "vitest";
import { type FogSim, type FogSimOptions, startFogSim } from "../sim/fog-sim";

const API = "api";
const USER = "user";
const NEVER = "0000-00-00 00:00:00";

const sims: FogSim[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((sim) => sim.close()));
});

async function sim(options: Partial<FogSimOptions> = {}): Promise<FogSim> {
  const started = await startFogSim({
    hosts: [
      { name: "Lab-Pod1", mac: "AA:BB:CC:DD:EE:01", ip: "10.0.0.1" },
      { name: "pod2", mac: "aa:bb:cc:dd:ee:02" },
      { name: "fog-virtualPod-5.1", mac: "aa:bb:cc:dd:ee:03" },
    ],
    images: [{ id: 5, name: "clean", sizeGB: 4, partitions: [1, 1] }],
    apiToken: API,
    userToken: USER,
    timeScale: 10,
    ...options,
  });
  sims.push(started);
  return started;
}

interface Answer {
  status: number;
  contentType: string | null;
  text: string;
}

async function call(
  fog: FogSim,
  method: string,
  route: string,
  body?: unknown,
  tokens: { api?: string; user?: string } = { api: API, user: USER },
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (tokens.api !== undefined) headers["fog-api-token"] = tokens.api;
  if (tokens.user !== undefined) headers["fog-user-token"] = tokens.user;
  const response = await fetch(new URL(route, fog.url), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return {
    status: response.status,
    contentType: response.headers.get("content-type"),
    text: await response.text(),
  };
}

async function json<T>(fog: FogSim, route: string): Promise<T> {
  const answer = await call(fog, "GET", route);
  expect(answer.status).toBe(200);
  return JSON.parse(answer.text) as T;
}

type Obj = Record<string, unknown>;

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("FOG sim: HTTP surface", () => {
  it("answers system/status with plain text and without tokens", async () => {
    const fog = await sim();
    const answer = await call(fog, "GET", "system/status", undefined, {});
    expect(answer).toMatchObject({ status: 200, text: "success" });
  });

  it("answers 403 for a wrong API token and 401 for a wrong user token, both empty JSON", async () => {
    const fog = await sim();
    for (const tokens of [{ user: USER }, { api: "x", user: USER }]) {
      const answer = await call(fog, "GET", "host", undefined, tokens);
      expect(answer).toEqual({ status: 403, contentType: "application/json", text: "" });
    }
    for (const tokens of [{ api: API }, { api: API, user: "x" }]) {
      const answer = await call(fog, "GET", "host", undefined, tokens);
      expect(answer).toEqual({ status: 401, contentType: "application/json", text: "" });
    }
    fog.setTokens({ apiToken: "x" });
    expect((await call(fog, "GET", "host", undefined, { api: "x", user: USER })).status).toBe(200);
  });

  it("answers 501 for unmatched routes and 404 for unknown ids, with empty bodies", async () => {
    const fog = await sim();
    for (const [method, route] of [
      ["GET", "nosuchclass"],
      ["GET", "host/abc"],
      ["POST", "host"],
      ["DELETE", "task/current"],
    ] as const) {
      expect(await call(fog, method, route)).toMatchObject({ status: 501, text: "" });
    }
    for (const [method, route] of [
      ["GET", "host/99"],
      ["PUT", "host/99/edit"],
      ["POST", "host/99/task"],
      ["DELETE", "host/99/cancel"],
    ] as const) {
      const body = method === "GET" ? undefined : {};
      expect(await call(fog, method, route, body)).toMatchObject({ status: 404, text: "" });
    }
  });

  it("answers Apache's HTML 404 outside the web root (a URL without /fog/)", async () => {
    const fog = await sim();
    const response = await fetch(`${new URL(fog.url).origin}/host/search/pod2`, {
      headers: { "fog-api-token": API, "fog-user-token": USER },
    });
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toBe("text/html; charset=iso-8859-1");
    expect(await response.text()).toContain("<title>404 Not Found</title>");
  });

  it("keeps the deployed time a host starts with", async () => {
    const fog = await sim({
      hosts: [{ name: "pod1", mac: "aa:00:00:00:00:01", deployed: "2024-05-01 10:00:00" }],
    });
    expect(await json<Obj>(fog, "host/1")).toMatchObject({ deployed: "2024-05-01 10:00:00" });
  });

  it("sends every value as a string", async () => {
    const fog = await sim();
    const host = await json<Obj>(fog, "host/1");
    expect(host).toMatchObject({
      id: "1",
      name: "Lab-Pod1",
      ip: "10.0.0.1",
      imageID: "0",
      imagename: "",
      primac: "aa:bb:cc:dd:ee:01",
      macs: ["aa:bb:cc:dd:ee:01"],
      deployed: NEVER,
      pingstatuscode: "0",
    });
    expect(host).toHaveProperty("pingstatus");
    const images = await json<{ count: number; images: Obj[] }>(fog, "image");
    expect(images.images[0]).toMatchObject({ id: "5", name: "clean", isEnabled: "1" });
    expect(await json(fog, "group")).toEqual({ count: 0, groups: [] });
    expect(await json(fog, "groupassociation")).toEqual({ count: 0, groupassociations: [] });
  });

  it("searches hosts by case-insensitive substring, like FOG", async () => {
    const fog = await sim();
    const found = await json<{ count: number; hosts: Obj[] }>(fog, "host/search/POD");
    expect(found.hosts.map((host) => host.name)).toEqual([
      "Lab-Pod1",
      "pod2",
      "fog-virtualPod-5.1",
    ]);
    expect(found.count).toBe(3);
  });

  it("lists a host whose name FOG 1.5 refuses, but 404s it on single-host routes", async () => {
    const fog = await sim();
    const list = await json<{ hosts: Obj[] }>(fog, "host");
    expect(list.hosts.map((host) => host.name)).toContain("fog-virtualPod-5.1");
    expect((await call(fog, "GET", "host/3")).status).toBe(404);
    expect((await call(fog, "POST", "host/3/task", { taskTypeID: 1 })).status).toBe(404);
  });
});

describe("FOG sim: tasks", () => {
  it("validates task creation in FOG's order and answers null on success", async () => {
    const fog = await sim();
    expect(await call(fog, "POST", "host/1/task", { taskTypeID: 99 })).toMatchObject({
      status: 501,
      text: expect.stringContaining('"Invalid tasking type passed"'),
    });
    expect(JSON.parse((await call(fog, "POST", "host/1/task", { taskTypeID: 1 })).text)).toEqual({
      error: "Image is not valid",
    });
    const edited = await call(fog, "PUT", "host/1/edit", { imageID: 5 });
    expect(JSON.parse(edited.text)).toMatchObject({ imageID: "5", imagename: "clean" });
    expect(await call(fog, "POST", "host/1/task", { taskTypeID: 1, taskName: "d" })).toMatchObject({
      status: 200,
      text: "null",
    });
    expect(await call(fog, "POST", "host/1/task", { taskTypeID: 1 })).toMatchObject({
      status: 500,
      text: expect.stringContaining("Host is already a member of an active task"),
    });
    // Any known type is accepted; a wipe needs no image.
    expect((await call(fog, "POST", "host/2/task", { taskTypeID: 18 })).status).toBe(200);
  });

  it("lists active tasks with FOG's string formats and embedded objects", async () => {
    const fog = await sim();
    await call(fog, "PUT", "host/1/edit", { imageID: 5 });
    await call(fog, "POST", "host/1/task", { taskTypeID: 1, taskName: "deploy" });
    fog.networkBoot("Lab-Pod1");
    await until(() => fog.tasks()[0]?.stateId === 3 && (fog.tasks()[0]?.percent ?? 0) > 0);

    const current = await json<{ count: number; tasks: Obj[] }>(fog, "task/current");
    const task = current.tasks[0] ?? {};
    expect(current.count).toBe(1);
    expect(task).toMatchObject({
      id: "1",
      name: "deploy",
      hostID: "1",
      typeID: "1",
      stateID: "3",
      imageID: "5",
      state: { id: "3", name: "In-Progress" },
      type: { id: "1", name: "Deploy" },
      host: { id: "1", name: "Lab-Pod1" },
      image: { id: "5", name: "clean" },
    });
    expect(task.percent).toMatch(/^\d{1,3}\.\d\d$/);
    expect(task.pct).toMatch(/^\d{10}$/);
    expect(Number(task.pct)).toBe(Math.floor(Number(task.percent)));
    for (const field of ["bpm", "timeElapsed", "timeRemaining", "dataCopied"]) {
      expect(task[field]).toMatch(/^ +\S/);
    }
    expect(task.checkInTime).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(await json(fog, "task/active")).toEqual(current);
  });

  it("waits for the network boot, restarts percent per partition, then drops the task", async () => {
    const fog = await sim({ timeScale: 20 });
    await call(fog, "PUT", "host/1/edit", { imageID: 5 });
    await call(fog, "POST", "host/1/task", { taskTypeID: 1 });
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(fog.tasks()[0]?.stateId).toBe(1);
    expect(fog.networkBoot("pod2")).toBe(false);
    expect(fog.networkBoot("Lab-Pod1")).toBe(true);
    expect(fog.tasks()[0]?.stateId).toBe(2);

    const seen: { partition: number; percent: number }[] = [];
    await until(() => {
      const task = fog.tasks()[0];
      if (task?.stateId === 3) seen.push({ partition: task.partition, percent: task.percent });
      return task?.stateId === 4;
    });
    const first = seen.filter((entry) => entry.partition === 0).map((entry) => entry.percent);
    const second = seen.filter((entry) => entry.partition === 1).map((entry) => entry.percent);
    expect(Math.max(...first)).toBeGreaterThan(Math.min(...second));
    expect(fog.hosts()[0]?.deployed).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(await json(fog, "task/current")).toEqual({ count: 0, tasks: [] });
  });

  it("cancels into state 5, leaving deployed alone; cancelling nothing is a no-op", async () => {
    const fog = await sim();
    expect(await call(fog, "DELETE", "host/1/cancel")).toMatchObject({ status: 200, text: "null" });
    await call(fog, "PUT", "host/1/edit", { imageID: 5 });
    await call(fog, "POST", "host/1/task", { taskTypeID: 1 });
    expect(await call(fog, "DELETE", "host/1/cancel")).toMatchObject({ status: 200, text: "null" });
    expect(fog.tasks()[0]?.stateId).toBe(5);
    expect(fog.hosts()[0]?.deployed).toBe(NEVER);
    expect(await json(fog, "task/current")).toEqual({ count: 0, tasks: [] });
  });

  it("ends a task cancelled in its web UI (5) or failed by the host (6), leaving deployed alone", async () => {
    const fog = await sim({ timeScale: 200 });
    const changes: [string, number][] = [];
    fog.onTaskChange((task) => changes.push([task.hostName, task.stateId]));
    expect(fog.cancelTask("pod2")).toBe(false);
    for (const id of ["1", "2"]) {
      await call(fog, "PUT", `host/${id}/edit`, { imageID: 5 });
      await call(fog, "POST", `host/${id}/task`, { taskTypeID: 1 });
    }
    fog.networkBoot("Lab-Pod1");
    fog.networkBoot("pod2");
    await until(() => fog.tasks().every((task) => task.stateId === 3));
    expect(fog.cancelTask("Lab-Pod1")).toBe(true);
    expect(fog.failTask("pod2")).toBe(true);
    expect(fog.tasks().map((task) => task.stateId)).toEqual([5, 6]);
    expect(changes.slice(-2)).toEqual([
      ["Lab-Pod1", 5],
      ["pod2", 6],
    ]);
    expect(await json(fog, "task/current")).toEqual({ count: 0, tasks: [] });
    const all = await json<{ tasks: Obj[] }>(fog, "task");
    expect(all.tasks.map((task) => [task.stateID, (task.state as Obj).name])).toEqual([
      ["5", "Cancelled"],
      ["6", "Failed"],
    ]);
    expect(fog.hosts().map((host) => host.deployed)).toEqual([NEVER, NEVER, NEVER]);
  });

  it("answers raw, truncated and lost answers as faults say", async () => {
    const fog = await sim();
    fog.failNextRequests(1, 200, { route: "host", truncate: 30 });
    const cut = await call(fog, "GET", "host");
    expect(cut.status).toBe(200);
    expect(cut.contentType).toBe("application/json");
    expect(cut.text).toHaveLength(30);
    expect(() => JSON.parse(cut.text)).toThrow();

    fog.failNextRequests(1, 500, {
      route: "host",
      text: "<b>Fatal error</b>",
      contentType: "text/html",
    });
    expect(await call(fog, "GET", "host")).toMatchObject({
      status: 500,
      contentType: "text/html",
      text: "<b>Fatal error</b>",
    });

    // The work done, the answer lost: the task exists though the client saw a 500.
    await call(fog, "PUT", "host/1/edit", { imageID: 5 });
    fog.failNextRequests(1, 500, { method: "POST", afterWork: true });
    expect((await call(fog, "POST", "host/1/task", { taskTypeID: 1 })).status).toBe(500);
    expect(fog.tasks()).toHaveLength(1);

    // Without afterWork the fault answers before anything is done.
    fog.failNextRequests(1, 500, { method: "DELETE" });
    expect((await call(fog, "DELETE", "host/1/cancel")).status).toBe(500);
    expect(fog.tasks()[0]?.stateId).toBe(1);

    // Never answered, though the work is done.
    fog.failNextRequests(1, 200, { method: "DELETE", afterWork: true, hang: true });
    const hung = await fetch(new URL("host/1/cancel", fog.url), {
      method: "DELETE",
      headers: { "fog-api-token": API, "fog-user-token": USER },
      signal: AbortSignal.timeout(200),
    }).catch((error: unknown) => error);
    expect((hung as Error).name).toBe("TimeoutError");
    expect(fog.tasks()[0]?.stateId).toBe(5);
  });

  it("answers injected faults to matching requests only, and logs every request", async () => {
    const fog = await sim();
    fog.failNextRequests(1, 500, { method: "POST", body: { error: "Failed to create task" } });
    expect((await call(fog, "GET", "host")).status).toBe(200);
    expect(await call(fog, "POST", "host/1/task", { taskTypeID: 1 })).toMatchObject({
      status: 500,
      text: expect.stringContaining("Failed to create task"),
    });
    expect(fog.requests).toEqual([
      { method: "GET", path: "/fog/host", route: "host", status: 200, bytes: expect.any(Number) },
      {
        method: "POST",
        path: "/fog/host/1/task",
        route: "host/1/task",
        status: 500,
        // The injected fault's body, counted as it went out.
        bytes: JSON.stringify({ error: "Failed to create task" }, null, 4).length,
      },
    ]);
    expect(fog.requests[0]!.bytes).toBeGreaterThan(100);
  });
});
