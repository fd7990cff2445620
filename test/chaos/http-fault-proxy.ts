/**
 * An HTTP proxy on loopback put between LaaS and one HTTP service (the dashboard, FOG), that
 * passes requests on unchanged unless a fault rule matches. Faults are what a lab's network,
 * reverse proxy or an overloaded service really do:
 *
 * - `status`: the proxy answers itself (a 500/502/503 from the web server in front), the
 *   request never reaches the service;
 * - `html`: a 200 HTML page where JSON was expected (a login page, a captive portal), not
 *   forwarded;
 * - `truncated`: forwarded, the service acts, and its answer arrives cut short (half the body,
 *   with a Content-Length that matches what is sent, so that only the JSON is broken);
 * - `hang-after-forward`: forwarded, the service acts, and the answer never comes — the client
 *   waits until its own timeout (the work done, the answer lost);
 * - `drop-after-forward`: forwarded, the service acts, and the connection is reset before the
 *   answer is written;
 * - `reset`: the connection is reset before anything is forwarded;
 * - `delay`: forwarded and answered, `ms` late.
 *
 * Which requests a rule takes is drawn from the proxy's own seeded stream, so a run is repeatable
 * as far as its requests are (their number depends on timing).
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Prng } from "./prng";

export type HttpFault =
  | { kind: "status"; status: number; body?: string; contentType?: string }
  | { kind: "html" }
  | { kind: "truncated" }
  | { kind: "hang-after-forward" }
  | { kind: "drop-after-forward" }
  | { kind: "reset" }
  | { kind: "delay"; ms: number };

export type HttpFaultKind = HttpFault["kind"];

export interface HttpFaultMatch {
  /** Only these methods (default: any). */
  methods?: readonly string[];
  /** Only paths (with query) matching this (default: any). */
  path?: RegExp;
}

export interface HttpFaultRule {
  /** A label for the record (e.g. "dashboard users 500"). */
  label: string;
  match?: HttpFaultMatch;
  fault: HttpFault;
  /** Share of the matching requests the fault takes (default 1). */
  probability?: number;
  /** At most this many requests (default: no limit). */
  limit?: number;
}

export interface InjectedHttpFault {
  at: number;
  label: string;
  kind: HttpFaultKind;
  method: string;
  path: string;
}

export interface ProxiedRequest {
  at: number;
  method: string;
  path: string;
  /** The status the client got; 0 when none (hung, dropped, reset). */
  status: number;
  fault: HttpFaultKind | null;
}

export interface HttpFaultProxy {
  /** http://127.0.0.1:PORT (no trailing slash). */
  readonly url: string;
  readonly port: number;
  /** Every fault injected, oldest first. */
  readonly injected: readonly InjectedHttpFault[];
  readonly requests: readonly ProxiedRequest[];
  /** Requests passed on to the service (whatever became of the answer). */
  readonly forwarded: number;
  /** Adds a rule (first matching rule wins); answers a function that removes it. */
  addRule(rule: HttpFaultRule): () => void;
  clearRules(): void;
  /** Answers held by hang-after-forward are released by closing their connections. */
  releaseHung(): void;
  close(): Promise<void>;
}

interface ActiveRule extends HttpFaultRule {
  used: number;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

const LOGIN_PAGE =
  '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Log in | Lab</title></head>\n' +
  '<body><form method="post" action="/accounts/login/"><input name="username"><input name="password" type="password"></form></body></html>\n';

export interface HttpFaultProxyOptions {
  /** The service: http://127.0.0.1:PORT (its path, if any, is ignored: paths pass as sent). */
  upstream: string;
  seed: number;
  /** Name of the proxy's draw stream (default "http-proxy"). */
  name?: string;
  port?: number;
}

export async function startHttpFaultProxy(options: HttpFaultProxyOptions): Promise<HttpFaultProxy> {
  const upstream = new URL(options.upstream);
  const draws = new Prng(options.seed, `http:${options.name ?? "http-proxy"}`);
  const rules: ActiveRule[] = [];
  const injected: InjectedHttpFault[] = [];
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const hung = new Set<Socket>();
  const started = Date.now();
  let closed = false;
  let forwarded = 0;

  const choose = (method: string, path: string): ActiveRule | null => {
    for (const rule of rules) {
      if (rule.limit !== undefined && rule.used >= rule.limit) continue;
      if (rule.match?.methods && !rule.match.methods.includes(method)) continue;
      if (rule.match?.path && !rule.match.path.test(path)) continue;
      // A draw for every matching request, taken or not, keeps the stream's use predictable.
      if (!draws.chance(rule.probability ?? 1)) continue;
      rule.used++;
      return rule;
    }
    return null;
  };

  const forward = (
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name)) continue;
        headers[name] = value;
      }
      headers["content-length"] = String(body.length);
      const out = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 502,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          );
          res.on("error", reject);
        },
      );
      out.on("error", reject);
      out.end(body);
    });

  const reply = (
    res: ServerResponse,
    status: number,
    headers: IncomingHttpHeaders,
    body: Buffer,
  ): void => {
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || name === "content-length") continue;
      res.setHeader(name, value);
    }
    res.setHeader("content-length", String(body.length));
    res.statusCode = status;
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const rule = choose(method, path);
    const record: ProxiedRequest = {
      at: Date.now() - started,
      method,
      path,
      status: 0,
      fault: rule?.fault.kind ?? null,
    };
    requests.push(record);
    if (rule) {
      injected.push({ at: record.at, label: rule.label, kind: rule.fault.kind, method, path });
    }
    const fault = rule?.fault;
    if (fault?.kind === "reset") {
      req.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === "status") {
      const page = `<!doctype html>\n<html><head><title>${fault.status}</title></head><body><h1>${fault.status}</h1></body></html>\n`;
      record.status = fault.status;
      reply(
        res,
        fault.status,
        { "content-type": fault.contentType ?? "text/html" },
        Buffer.from(fault.body ?? page),
      );
      return;
    }
    if (fault?.kind === "html") {
      record.status = 200;
      reply(res, 200, { "content-type": "text/html; charset=utf-8" }, Buffer.from(LOGIN_PAGE));
      return;
    }
    let answer: Awaited<ReturnType<typeof forward>>;
    try {
      forwarded += 1;
      answer = await forward(req, body);
    } catch {
      // The service itself is not there: what a reverse proxy answers then.
      record.status = 502;
      reply(res, 502, { "content-type": "text/html" }, Buffer.from("<h1>502 Bad Gateway</h1>\n"));
      return;
    }
    if (closed) return;
    switch (fault?.kind) {
      case "hang-after-forward":
        hung.add(req.socket);
        return; // never answered: the client's timeout ends it, or close()
      case "drop-after-forward":
        req.socket.resetAndDestroy();
        return;
      case "truncated": {
        const cut = answer.body.subarray(0, Math.floor(answer.body.length / 2));
        record.status = answer.status;
        reply(res, answer.status, answer.headers, cut);
        return;
      }
      case "delay":
        await new Promise((resolve) => setTimeout(resolve, fault.ms));
        break;
      default:
        break;
    }
    record.status = answer.status;
    reply(res, answer.status, answer.headers, answer.body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      req.socket.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => {
      sockets.delete(socket);
      hung.delete(socket);
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    injected,
    requests,
    get forwarded() {
      return forwarded;
    },
    addRule(rule) {
      const active: ActiveRule = { ...rule, used: 0 };
      rules.push(active);
      return () => {
        const index = rules.indexOf(active);
        if (index >= 0) rules.splice(index, 1);
      };
    },
    clearRules() {
      rules.splice(0);
    },
    releaseHung() {
      for (const socket of hung) socket.destroy();
      hung.clear();
    },
    async close() {
      closed = true;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
