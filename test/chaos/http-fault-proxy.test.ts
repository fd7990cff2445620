/**
 * The chaos suite's HTTP fault proxy: each fault does what it says to the client, and the service
 * behind sees (or does not see) the request accordingly — "the work done, the answer lost" must
 * reach the service, a proxy's own 500 must not.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpFaultProxy, startHttpFaultProxy } from "./http-fault-proxy";

describe("HTTP fault proxy", () => {
  let service: Server;
  let proxy: HttpFaultProxy;
  const received: string[] = [];

  beforeAll(async () => {
    service = createServer((req, res) => {
      received.push(`${req.method} ${req.url}`);
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ results: [{ id: 1, name: "a booking" }], count: 1 }));
    });
    await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve));
    const port = (service.address() as AddressInfo).port;
    proxy = await startHttpFaultProxy({ upstream: `http://127.0.0.1:${port}`, seed: 1 });
  });
  afterAll(async () => {
    await proxy?.close();
    await new Promise((resolve) => service?.close(resolve));
  });

  const get = (path: string, timeoutMs = 2_000) =>
    fetch(`${proxy.url}${path}`, { signal: AbortSignal.timeout(timeoutMs) });

  it("passes requests on unchanged when no rule matches", async () => {
    const answer = await get("/api/bookings/?x=1");
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ results: [{ id: 1, name: "a booking" }], count: 1 });
    expect(received.at(-1)).toBe("GET /api/bookings/?x=1");
  });

  it("answers 500 itself: the service never sees the request", async () => {
    const before = received.length;
    const remove = proxy.addRule({ label: "500", fault: { kind: "status", status: 500 } });
    const answer = await get("/a");
    remove();
    expect(answer.status).toBe(500);
    expect(answer.headers.get("content-type")).toContain("text/html");
    expect(received.length).toBe(before);
  });

  it("answers an HTML page with 200 where JSON was expected", async () => {
    const remove = proxy.addRule({ label: "html", fault: { kind: "html" } });
    const answer = await get("/b");
    remove();
    expect(answer.status).toBe(200);
    expect(await answer.text()).toMatch(/^<!DOCTYPE html>/);
  });

  it("truncates the service's answer (forwarded: the service acted)", async () => {
    const before = received.length;
    const remove = proxy.addRule({ label: "cut", fault: { kind: "truncated" } });
    const answer = await get("/c");
    remove();
    const text = await answer.text();
    expect(received.length).toBe(before + 1);
    expect(answer.status).toBe(200);
    expect(() => JSON.parse(text)).toThrow();
    expect(text.length).toBeGreaterThan(0);
  });

  it("hang-after-forward: the service acts, the client never gets an answer", async () => {
    const before = received.length;
    const remove = proxy.addRule({ label: "hang", fault: { kind: "hang-after-forward" } });
    await expect(get("/d", 500)).rejects.toThrow(/timeout|aborted/i);
    remove();
    expect(received.slice(before)).toEqual(["GET /d"]);
    proxy.releaseHung();
  });

  it("drop-after-forward: the service acts, the connection is reset", async () => {
    const before = received.length;
    const remove = proxy.addRule({ label: "drop", fault: { kind: "drop-after-forward" } });
    await expect(get("/e")).rejects.toThrow();
    remove();
    expect(received.slice(before)).toEqual(["GET /e"]);
  });

  it("reset: the connection is reset before anything reaches the service", async () => {
    const before = received.length;
    const remove = proxy.addRule({ label: "reset", fault: { kind: "reset" } });
    await expect(get("/f")).rejects.toThrow();
    remove();
    expect(received.length).toBe(before);
  });

  it("matches by method and path, within a limit, and records what it injected", async () => {
    const remove = proxy.addRule({
      label: "users only",
      match: { methods: ["GET"], path: /^\/api\/users\// },
      fault: { kind: "status", status: 503 },
      limit: 1,
    });
    expect((await get("/api/bookings/")).status).toBe(200);
    expect((await get("/api/users/1/")).status).toBe(503);
    expect((await get("/api/users/1/")).status).toBe(200);
    remove();
    expect(proxy.injected.filter((i) => i.label === "users only")).toMatchObject([
      { kind: "status", method: "GET", path: "/api/users/1/" },
    ]);
  });

  it("takes the share of requests its probability says, drawn from its seed", async () => {
    const remove = proxy.addRule({
      label: "half",
      match: { path: /^\/p\// },
      fault: { kind: "status", status: 500 },
      probability: 0.5,
    });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await get(`/p/${i}`)).status);
    remove();
    const failed = statuses.filter((s) => s === 500).length;
    expect(failed).toBeGreaterThan(8);
    expect(failed).toBeLessThan(32);
  });
});
