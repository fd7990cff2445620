/**
 * A stand-in for the Pharos dashboard (reference/dashboard-apis.md §1) that behaves like the real
 * Django REST Framework app rather than a friendly fake: a plain list unless pagination is turned
 * on, DRF's error bodies and status codes, `?resource_id=` silently ignored, token auth that
 * answers 403 (session auth first, as upstream) or 401 with `WWW-Authenticate: Token`.
 *
 * A path no route matches gets Django's own HTML 404 page (not DRF's JSON): what a client sees
 * when its dashboard URL lacks the prefix the dashboard is served under (`basePath`).
 *
 * Bookings are kept as raw JSON values so tests can serve malformed entries. Users
 * (`/api/users/`) are an extension the 2017 dashboard did not have: later dashboards expose the
 * booking user with the SSH key they gave it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** A booking as the dashboard renders it. */
export interface RawBooking {
  id: number;
  resource_id: number;
  start: string;
  end: string;
  installer_name: string | null;
  scenario_name: string | null;
  purpose: string;
  /** Extension: who booked (user id or name); left out unless given, as the 2017 API did. */
  user?: number | string;
}

export interface BookingSpec {
  id: number;
  resource_id: number;
  start: Date;
  end: Date;
  installer_name?: string | null;
  scenario_name?: string | null;
  purpose?: string;
  user?: number | string;
}

/** Renders a booking the way the dashboard's serializer does. */
export function bookingAt(spec: BookingSpec): RawBooking {
  return {
    id: spec.id,
    resource_id: spec.resource_id,
    start: drfDateTime(spec.start),
    end: drfDateTime(spec.end),
    installer_name: spec.installer_name ?? null,
    scenario_name: spec.scenario_name ?? null,
    purpose: spec.purpose ?? "",
    ...(spec.user !== undefined ? { user: spec.user } : {}),
  };
}

/**
 * DRF's DateTimeField output in UTC: Python's isoformat() (microseconds only when non-zero) with
 * "+00:00" shortened to "Z".
 */
export function drfDateTime(date: Date): string {
  const iso = date.toISOString(); // 2017-06-01T14:00:00.000Z
  const millis = date.getUTCMilliseconds();
  const seconds = iso.slice(0, 19);
  return millis === 0 ? `${seconds}Z` : `${seconds}.${String(millis).padStart(3, "0")}000Z`;
}

/**
 * A dashboard user as the user endpoint renders it. Optional fields are left out of the rendering
 * when not given, as a dashboard whose serializer lacks them would.
 */
export interface SimUser {
  id: number;
  username: string;
  email: string;
  first_name?: string;
  last_name?: string;
  ssh_public_key?: string | null;
}

export interface SimResource {
  id: number;
  name: string;
  [field: string]: unknown;
}

export interface StatusNote {
  id: number;
  resource: number;
  type: string;
  title: string;
  content: string;
  timestamp: string;
}

export interface SimRequest {
  method: string;
  /** Path and query as sent. */
  path: string;
  /** Whether an Authorization header came with the request (its value is not kept). */
  authorization: boolean;
  /** Whether it carried the right token. */
  authenticated: boolean;
  status: number;
}

export interface DashboardSimOptions {
  port?: number;
  /** The token the dashboard accepts (default "sim-dashboard-token"). */
  token?: string;
  bookings?: unknown[];
  /** Resources beyond those the bookings already refer to. */
  resources?: SimResource[];
  servers?: unknown[];
  /** Users served at `/api/users/` (by id or user name). */
  users?: SimUser[];
  /** Turns on DRF's PageNumberPagination with this page size. */
  pageSize?: number;
  /** 403 when session auth is listed first (upstream), 401 when token auth is. */
  authFailureStatus?: 401 | 403;
  /** Upstream's DjangoModelPermissionsOrAnonReadOnly: reads without a token succeed. */
  anonymousRead?: boolean;
  /**
   * The path the dashboard is served under (e.g. "/dashboard"): its API is at
   * `/dashboard/api/…`, and anything outside answers Django's HTML 404. Default: the root.
   */
  basePath?: string;
}

export interface FailureResponse {
  body?: string;
  contentType?: string;
  /**
   * The dashboard does the work first (a note is stored), then the failure replaces its answer:
   * an answer lost on the way back.
   */
  afterWork?: boolean;
  /**
   * The dashboard's real answer, cut after this many bytes: a truncated body with a matching
   * length, so the HTTP exchange itself is sound. `status`, `body` and `contentType` are ignored.
   */
  truncate?: number;
}

export interface DashboardSim {
  /**
   * Root of the dashboard, without a trailing "/" (e.g. http://127.0.0.1:40123, or
   * http://127.0.0.1:40123/dashboard under a basePath).
   */
  readonly url: string;
  readonly token: string;
  /** The raw bookings served, in order. */
  readonly bookings: readonly unknown[];
  readonly requests: readonly SimRequest[];
  readonly statusNotes: readonly StatusNote[];
  readonly users: readonly SimUser[];
  addBooking(raw: unknown): void;
  /** Deletes a booking, as a cancellation on the dashboard does; false when there was none. */
  removeBooking(id: number | string): boolean;
  setBookings(list: unknown[]): void;
  addUser(user: SimUser): void;
  setUsers(users: SimUser[]): void;
  /**
   * The next `count` requests, whatever they are, get `status` (HTML for 5xx unless given), or
   * as `response` says: the work done first, a truncated answer.
   */
  failNext(count: number, status: number, response?: FailureResponse): void;
  /** The next `count` requests are never answered (until close). */
  hangNext(count: number): void;
  /** Called with each request before it is answered, e.g. to change bookings mid-listing. */
  onRequest(listener: (request: { method: string; path: string }) => void): void;
  close(): Promise<void>;
}

type AuthOutcome = { kind: "anonymous" } | { kind: "ok" } | { kind: "failed"; detail: string };

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

class HttpReply extends Error {
  constructor(readonly reply: Reply) {
    super(`HTTP ${reply.status}`);
  }
}

const NOT_FOUND: Reply = { status: 404, body: { detail: "Not found." } };

/** Django's own 404 page (DEBUG off), answered where no URL pattern matches: HTML, not JSON. */
const DJANGO_NOT_FOUND = `<!doctype html>
<html lang="en">
<head>
  <title>Not Found</title>
</head>
<body>
  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>
</body>
</html>
`;

class DashboardSimServer implements DashboardSim {
  url = "";
  readonly token: string;
  bookings: unknown[];
  readonly requests: SimRequest[] = [];
  readonly statusNotes: StatusNote[] = [];
  users: SimUser[];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #options: DashboardSimOptions;
  readonly #basePath: string;
  readonly #failures: Array<{ status: number; response: FailureResponse }> = [];
  readonly #listeners: Array<(request: { method: string; path: string }) => void> = [];
  #hangs = 0;

  constructor(options: DashboardSimOptions) {
    this.#options = options;
    this.#basePath = (options.basePath ?? "").replace(/\/+$/, "");
    if (this.#basePath !== "" && !this.#basePath.startsWith("/")) {
      throw new Error("basePath must start with /");
    }
    this.token = options.token ?? "sim-dashboard-token";
    this.bookings = [...(options.bookings ?? [])];
    this.users = [...(options.users ?? [])];
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    });
    this.#server.on("connection", (socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => resolve());
    });
    const address = this.#server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${address.port}${this.#basePath}`;
  }

  addBooking(raw: unknown): void {
    this.bookings.push(raw);
  }

  removeBooking(id: number | string): boolean {
    const index = this.bookings.findIndex((raw) => String(field(raw, "id")) === String(id));
    if (index < 0) return false;
    this.bookings.splice(index, 1);
    return true;
  }

  setBookings(list: unknown[]): void {
    this.bookings = [...list];
  }

  addUser(user: SimUser): void {
    this.users.push(user);
  }

  setUsers(users: SimUser[]): void {
    this.users = [...users];
  }

  failNext(count: number, status: number, response: FailureResponse = {}): void {
    for (let i = 0; i < count; i++) this.#failures.push({ status, response });
  }

  hangNext(count: number): void {
    this.#hangs += count;
  }

  onRequest(listener: (request: { method: string; path: string }) => void): void {
    this.#listeners.push(listener);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const body = await readBody(req);
    for (const listener of this.#listeners) listener({ method, path });
    const auth = this.#authenticate(req.headers.authorization);
    const record = (status: number): void => {
      this.requests.push({
        method,
        path,
        authorization: req.headers.authorization !== undefined,
        authenticated: auth.kind === "ok",
        status,
      });
    };

    if (this.#hangs > 0) {
      this.#hangs--;
      record(0);
      return; // left open; close() destroys the socket
    }
    const failure = this.#failures.shift();
    if (failure && !failure.response.afterWork && failure.response.truncate === undefined) {
      record(failure.status);
      sendFailure(res, failure.status, failure.response);
      return;
    }

    let reply: Reply;
    try {
      reply = this.#route(req, method, path, body, auth);
    } catch (error) {
      if (!(error instanceof HttpReply)) throw error;
      reply = error.reply;
    }
    if (failure?.response.truncate !== undefined) {
      record(reply.status);
      sendTruncated(res, reply, failure.response.truncate);
      return;
    }
    if (failure) {
      record(failure.status);
      sendFailure(res, failure.status, failure.response);
      return;
    }
    record(reply.status);
    sendJson(res, reply);
  }

  #route(
    req: IncomingMessage,
    method: string,
    path: string,
    body: string,
    auth: AuthOutcome,
  ): Reply {
    const url = new URL(path, "http://sim.invalid");
    // Outside the path the dashboard is served under, no URL pattern matches.
    if (this.#basePath !== "" && !url.pathname.startsWith(`${this.#basePath}/`)) {
      return djangoNotFound();
    }
    const route = url.pathname.slice(this.#basePath.length);
    const known = [
      "/api/bookings",
      "/api/resources",
      "/api/servers",
      "/api/resource_status",
      "/api/users",
    ];
    // Django's APPEND_SLASH (DEBUG off) redirects any method to the slashed URL.
    if (known.includes(route)) {
      return {
        status: 301,
        body: "",
        headers: { Location: `${this.#basePath}${route}/${url.search}` },
      };
    }
    const detail = /^\/api\/bookings\/([^/]+)\/$/.exec(route);
    if (route === "/api/bookings/" || detail) {
      this.#authorize(auth, method);
      allowMethods(method, ["GET"]);
      if (detail) {
        const found = this.bookings.find((raw) => String(field(raw, "id")) === detail[1]);
        if (found === undefined) return NOT_FOUND;
        return { status: 200, body: found };
      }
      return { status: 200, body: this.#paginate(req, url, this.#filterBookings(url)) };
    }
    if (route === "/api/resources/") {
      this.#authorize(auth, method);
      allowMethods(method, ["GET"]);
      return { status: 200, body: this.#paginate(req, url, this.#resources()) };
    }
    if (route === "/api/servers/") {
      this.#authorize(auth, method);
      allowMethods(method, ["GET"]);
      return { status: 200, body: this.#paginate(req, url, this.#options.servers ?? []) };
    }
    const user = /^\/api\/users\/([^/]+)\/$/.exec(route);
    if (route === "/api/users/" || user) {
      this.#authorize(auth, method);
      allowMethods(method, ["GET"]);
      if (user) {
        const found = this.#findUser(user[1] ?? "");
        return found ? { status: 200, body: renderUser(found) } : NOT_FOUND;
      }
      return { status: 200, body: this.#paginate(req, url, this.users.map(renderUser)) };
    }
    if (route === "/api/resource_status/") {
      this.#authorize(auth, method);
      allowMethods(method, ["GET", "POST"]);
      if (method === "GET")
        return { status: 200, body: this.#paginate(req, url, this.statusNotes) };
      return this.#createStatusNote(req, body);
    }
    return djangoNotFound();
  }

  /** The user a path names: by id when it is a number, else by user name (exact, as Django). */
  #findUser(encoded: string): SimUser | undefined {
    let ref: string;
    try {
      ref = decodeURIComponent(encoded);
    } catch {
      return undefined; // a broken %-escape matches nobody: Django answers 404
    }
    if (/^\d+$/.test(ref)) return this.users.find((u) => u.id === Number(ref));
    return this.users.find((u) => u.username === ref);
  }

  /** DRF's TokenAuthentication, header parsing included. */
  #authenticate(header: string | undefined): AuthOutcome {
    if (header === undefined) return { kind: "anonymous" };
    const parts = header.trim().split(/\s+/);
    if (parts[0]?.toLowerCase() !== "token") return { kind: "anonymous" };
    if (parts.length === 1) {
      return { kind: "failed", detail: "Invalid token header. No credentials provided." };
    }
    if (parts.length > 2) {
      return {
        kind: "failed",
        detail: "Invalid token header. Token string should not contain spaces.",
      };
    }
    return parts[1] === this.token ? { kind: "ok" } : { kind: "failed", detail: "Invalid token." };
  }

  #authorize(auth: AuthOutcome, method: string): void {
    if (auth.kind === "ok") return;
    if (auth.kind === "anonymous" && this.#options.anonymousRead && method === "GET") return;
    const status = this.#options.authFailureStatus ?? 403;
    const detail =
      auth.kind === "failed" ? auth.detail : "Authentication credentials were not provided.";
    throw new HttpReply({
      status,
      body: { detail },
      headers: status === 401 ? { "WWW-Authenticate": "Token" } : {},
    });
  }

  /** django-filter on `resource` and `id`; anything else (`resource_id`, …) is ignored. */
  #filterBookings(url: URL): unknown[] {
    let list = this.bookings;
    const resource = url.searchParams.get("resource");
    if (resource) {
      if (!/^\d+$/.test(resource) || !this.#resourceIds().has(Number(resource))) {
        throw new HttpReply({
          status: 400,
          body: {
            resource: ["Select a valid choice. That choice is not one of the available choices."],
          },
        });
      }
      list = list.filter((raw) => String(field(raw, "resource_id")) === String(Number(resource)));
    }
    const id = url.searchParams.get("id");
    if (id) {
      if (Number.isNaN(Number(id))) {
        throw new HttpReply({ status: 400, body: { id: ["Enter a number."] } });
      }
      list = list.filter((raw) => Number(field(raw, "id")) === Number(id));
    }
    return list;
  }

  /** Resources configured plus those the bookings refer to (a booking's resource exists). */
  #resources(): SimResource[] {
    const resources = [...(this.#options.resources ?? [])];
    const configured = new Set(resources.map((r) => r.id));
    for (const id of this.#resourceIds()) {
      if (!configured.has(id)) resources.push({ id, name: `resource-${id}` });
    }
    return resources;
  }

  #resourceIds(): Set<number> {
    const ids = new Set((this.#options.resources ?? []).map((r) => r.id));
    for (const raw of this.bookings) {
      const id = Number(field(raw, "resource_id"));
      if (Number.isInteger(id)) ids.add(id);
    }
    return ids;
  }

  /** DRF's PageNumberPagination, links built from the Host the request came to. */
  #paginate(req: IncomingMessage, url: URL, list: readonly unknown[]): unknown {
    const size = this.#options.pageSize;
    if (size === undefined) return list;
    const lastPage = Math.max(1, Math.ceil(list.length / size));
    const asked = url.searchParams.get("page") ?? "1";
    const page = asked === "last" ? lastPage : /^\d+$/.test(asked) ? Number(asked) : Number.NaN;
    if (!(page >= 1 && page <= lastPage)) {
      throw new HttpReply({ status: 404, body: { detail: "Invalid page." } });
    }
    const absolute = new URL(url.pathname + url.search, `http://${req.headers.host}`);
    const link = (target: number): string => {
      const copy = new URL(absolute);
      if (target === 1) copy.searchParams.delete("page");
      else copy.searchParams.set("page", String(target));
      return copy.href;
    };
    return {
      count: list.length,
      next: page < lastPage ? link(page + 1) : null,
      previous: page > 1 ? link(page - 1) : null,
      results: list.slice((page - 1) * size, page * size),
    };
  }

  /** A DRF ModelSerializer's create: JSON or form body, field errors as `{field: [msg]}`. */
  #createStatusNote(req: IncomingMessage, body: string): Reply {
    const contentType = (req.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
    let data: Record<string, unknown>;
    if (contentType === "application/json") {
      try {
        const parsed: unknown = JSON.parse(body);
        data =
          typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
      } catch (error) {
        return {
          status: 400,
          body: { detail: `JSON parse error - ${(error as Error).message}` },
        };
      }
    } else if (contentType === "application/x-www-form-urlencoded") {
      data = Object.fromEntries(new URLSearchParams(body));
    } else {
      return {
        status: 415,
        body: { detail: `Unsupported media type "${contentType}" in request.` },
      };
    }

    const errors: Record<string, string[]> = {};
    const text = (name: string): string => {
      const value = data[name];
      if (value === undefined || value === null) errors[name] = ["This field is required."];
      else if (typeof value !== "string") errors[name] = ["Not a valid string."];
      else if (value.trim() === "") errors[name] = ["This field may not be blank."];
      else return value;
      return "";
    };
    const resource = this.#resourcePk(data.resource, errors);
    const note = { type: text("type"), title: text("title"), content: text("content") };
    if (Object.keys(errors).length > 0 || resource === null) return { status: 400, body: errors };

    const created: StatusNote = {
      id: this.statusNotes.length + 1,
      resource,
      ...note,
      timestamp: drfDateTime(new Date()),
    };
    this.statusNotes.push(created);
    return { status: 201, body: created };
  }

  /** DRF's PrimaryKeyRelatedField. */
  #resourcePk(value: unknown, errors: Record<string, string[]>): number | null {
    if (value === undefined || value === null) {
      errors.resource = ["This field is required."];
      return null;
    }
    const id = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof id !== "number" || !Number.isInteger(id)) {
      errors.resource = [`Incorrect type. Expected pk value, received ${typeof value}.`];
      return null;
    }
    if (!this.#resourceIds().has(id)) {
      errors.resource = [`Invalid pk "${id}" - object does not exist.`];
      return null;
    }
    return id;
  }
}

export async function startDashboardSim(options: DashboardSimOptions = {}): Promise<DashboardSim> {
  const sim = new DashboardSimServer(options);
  await sim.listen(options.port ?? 0);
  return sim;
}

function renderUser(user: SimUser): Record<string, unknown> {
  const rendered: Record<string, unknown> = {
    id: user.id,
    username: user.username,
    email: user.email,
  };
  if (user.first_name !== undefined) rendered.first_name = user.first_name;
  if (user.last_name !== undefined) rendered.last_name = user.last_name;
  if (user.ssh_public_key !== undefined) rendered.ssh_public_key = user.ssh_public_key;
  return rendered;
}

function allowMethods(method: string, allowed: string[]): void {
  if (allowed.includes(method)) return;
  throw new HttpReply({
    status: 405,
    body: { detail: `Method "${method}" not allowed.` },
    headers: { Allow: [...allowed, "HEAD", "OPTIONS"].join(", ") },
  });
}

function field(raw: unknown, key: string): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return undefined;
  return (raw as Record<string, unknown>)[key];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Marks a reply whose body is an HTML page rather than JSON. */
const HTML = "text/html; charset=utf-8";

function djangoNotFound(): Reply {
  return { status: 404, body: DJANGO_NOT_FOUND, headers: { "Content-Type": HTML } };
}

function replyText(reply: Reply): string {
  return reply.headers?.["Content-Type"] === HTML ? String(reply.body) : JSON.stringify(reply.body);
}

function sendJson(res: ServerResponse, reply: Reply): void {
  for (const [name, value] of Object.entries(reply.headers ?? {})) res.setHeader(name, value);
  res.statusCode = reply.status;
  if (reply.status === 301) {
    res.end();
    return;
  }
  if (reply.headers?.["Content-Type"] !== HTML) {
    res.setHeader("Content-Type", "application/json");
    res.setHeader("Vary", "Accept");
  }
  res.end(replyText(reply));
}

/** The reply cut after `bytes` bytes, sent as if it were whole. */
function sendTruncated(res: ServerResponse, reply: Reply, bytes: number): void {
  res.statusCode = reply.status;
  res.setHeader("Content-Type", reply.headers?.["Content-Type"] ?? "application/json");
  res.end(Buffer.from(replyText(reply)).subarray(0, bytes));
}

/** What a proxy or Django itself answers when things break: HTML for 5xx, nothing otherwise. */
function sendFailure(res: ServerResponse, status: number, response: FailureResponse): void {
  const html = `<!doctype html>\n<html lang="en">\n<head><title>Server Error (${status})</title></head>\n<body><h1>Server Error (${status})</h1><p></p></body>\n</html>\n`;
  const body = response.body ?? (status >= 500 ? html : "");
  const contentType = response.contentType ?? (status >= 500 ? "text/html" : undefined);
  res.statusCode = status;
  if (contentType) res.setHeader("Content-Type", contentType);
  res.end(body);
}
