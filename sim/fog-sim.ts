/**
 * A FOG 1.5 server for tests and the demo, behaving like the real one's router: every value a
 * string, empty-bodied 401/403/404/501, fuzzy host search, deploy tasks that wait for the host
 * to network-boot, a transfer queue, per-partition progress, and finished tasks that leave
 * task/current while the host's `deployed` changes. Tasks cancelled (state 5) or, as newer FOG
 * marks them, failed (state 6) leave task/current too, with `deployed` unchanged. Outside the web
 * root (a URL without `/fog/`) the web server answers its own HTML 404 page, as Apache does.
 *
 * Time is compressed by `timeScale`: the sim's clock (timestamps, imaging speed, the imaging
 * client's update period) runs that many times faster than the wall clock.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FogSimHostOptions {
  name: string;
  mac: string;
  ip?: string;
  description?: string;
  /** Image assigned at start (default none, FOG's "0"). */
  imageId?: number;
  /** FOG's `deployed` at start, for a host FOG imaged before (default never). */
  deployed?: string;
}

export interface FogSimImageOptions {
  id: number;
  name: string;
  sizeGB: number;
  /** FOG's isEnabled (default true); a disabled image refuses deploys. */
  enabled?: boolean;
  /** False when no storage node holds the image (default true). */
  stored?: boolean;
  /** Relative partition sizes; percent restarts from 0 for each (default [1, 3]). */
  partitions?: number[];
}

export interface FogSimOptions {
  /** Port on 127.0.0.1 (default 0: any free port). */
  port?: number;
  hosts?: FogSimHostOptions[];
  images?: FogSimImageOptions[];
  apiToken?: string;
  userToken?: string;
  /** How many times faster than real time the sim runs (default 1). */
  timeScale?: number;
  /** Concurrent transfers per storage node (FOG's default 10); later hosts wait in state 2. */
  queueSize?: number;
  /** Sim seconds between a host's check-in and its transfer start, when a slot is free (default 10). */
  startDelaySeconds?: number;
  /** Up to this many sim seconds more, drawn for each check-in (default 0). */
  startJitterSeconds?: number;
  /** Imaging speed in GB per sim minute (default 8, partclone on 1 GbE). */
  gbPerMinute?: number;
  /**
   * Called as a deploy completes, before FOG answers anything that shows it complete: the host
   * reboots into the image it was given (the lab's hosts react to it). A task asked with
   * `shutdown` (`task.shutdown`) would have the host power off instead: that part is the
   * listener's to act on.
   */
  onDeployed?: (hostName: string, task: { shutdown: boolean }) => void;
}

export interface FogSimRequest {
  method: string;
  /** Path as received, e.g. "/fog/host/3/task". */
  path: string;
  /** Path under the web root, e.g. "host/3/task". */
  route: string;
  status: number;
  /** Bytes of the answer's body. */
  bytes: number;
}

export interface FogSimTask {
  id: number;
  name: string;
  hostId: number;
  hostName: string;
  typeId: number;
  stateId: number;
  imageId: number;
  /** Percent of the current partition, as last reported by the imaging client. */
  percent: number;
  /** Index of the partition being written (0-based). */
  partition: number;
  /**
   * Whether the task was asked with `shutdown` (its JSON field `shutdown`, "1" or "0"): the host
   * powers off once the task completes instead of rebooting. Always set by tasks(); optional so
   * that a task written by hand (a test's evidence) may leave it out, meaning false.
   */
  shutdown?: boolean;
}

export interface FogSimHost {
  id: number;
  name: string;
  imageId: number;
  /** FOG's `deployed`: "0000-00-00 00:00:00" until the first finished deploy. */
  deployed: string;
}

export interface FogSimFault {
  /** JSON body to answer (default: empty body). */
  body?: unknown;
  /** A raw body instead of JSON (a PHP error page, a truncated answer…). */
  text?: string;
  /** The fault's content type (default application/json, as FOG always says). */
  contentType?: string;
  /** Only requests with this method count. */
  method?: string;
  /** Only requests whose route (e.g. "host/3/task") equals this string or matches this pattern. */
  route?: string | RegExp;
  /**
   * FOG does the work first (the task is created, the image set), then the fault replaces its
   * answer: an answer lost on the way back.
   */
  afterWork?: boolean;
  /**
   * The answer FOG would give (after doing the work), cut after this many bytes: a truncated
   * body with a matching length, so the HTTP exchange itself is sound. `status` is ignored.
   */
  truncate?: number;
  /** Never answer (the connection stays open until close()); with afterWork, the work is done. */
  hang?: boolean;
}

export interface FogSim {
  /** FOG's web root, e.g. http://127.0.0.1:PORT/fog/ */
  readonly url: string;
  /** Every request answered, in order. */
  readonly requests: FogSimRequest[];
  /** All tasks ever created, any state. */
  tasks(): FogSimTask[];
  hosts(): FogSimHost[];
  /**
   * The host restarted and PXE-booted: a queued task checks in (state 2); a task already under
   * way starts over. Answers false when the host had no active task (it boots from its disk).
   */
  networkBoot(hostName: string): boolean;
  /** A stalled host's task never moves on (no start, no progress, no end), to test deadlines. */
  stallHost(hostName: string, stalled?: boolean): void;
  /**
   * Someone cancels the host's active task in FOG's web UI (state 5, as `DELETE host/{id}/cancel`):
   * it leaves task/current and `deployed` stays. Answers false when the host had no active task.
   */
  cancelTask(hostName: string): boolean;
  /**
   * The host's imaging client reports that it could not complete: newer FOG (1.5 maintenance,
   * 1.6) marks the task Failed (state 6); it leaves task/current and `deployed` stays. Answers
   * false when the host had no active task.
   */
  failTask(hostName: string): boolean;
  /**
   * The next n matching requests answer `status` (before any token check, like a proxy), or
   * as the fault says: a raw body, a truncated answer, no answer, the work done first.
   */
  failNextRequests(n: number, status: number, fault?: FogSimFault): void;
  /**
   * Calls `listener` whenever a task is created or changes state (synchronously, before FOG
   * answers anything that shows the change): tests act at an exact point of an imaging.
   */
  onTaskChange(listener: (task: FogSimTask) => void): void;
  setTokens(tokens: { apiToken?: string; userToken?: string }): void;
  close(): Promise<void>;
}

/** FOG 1.5's host name rule: a host whose name breaks it answers 404 on single-host routes. */
const VALID_HOST_NAME = /^[\w!@#$%^()\-'{}.~]{1,15}$/;
const NEVER = "0000-00-00 00:00:00";
/** The imaging client posts progress about every 3 s. */
const CLIENT_UPDATE_MS = 3000;
const MIN_TICK_MS = 10;
const MAX_BODY_BYTES = 1 << 20;

const TASK_STATES: Record<number, string> = {
  0: "Pending",
  1: "Queued",
  2: "Checked In",
  3: "In-Progress",
  4: "Complete",
  5: "Cancelled",
  6: "Failed",
};

/** What Apache answers for a path outside FOG's web root (its default error document). */
const APACHE_NOT_FOUND = `<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">
<html><head>
<title>404 Not Found</title>
</head><body>
<h1>Not Found</h1>
<p>The requested URL was not found on this server.</p>
<hr>
<address>Apache/2.4.52 (Ubuntu) Server at 127.0.0.1 Port 80</address>
</body></html>
`;

const TASK_TYPES: Record<number, string> = {
  1: "Deploy",
  2: "Capture",
  3: "Debug",
  4: "Memtest86+",
  5: "Test Disk",
  6: "Disk Surface Test",
  7: "Recover",
  8: "Multi-Cast",
  10: "Hardware Inventory",
  11: "Password Reset",
  12: "All Snapins",
  13: "Single Snapin",
  14: "Wake-Up",
  15: "Deploy - Debug",
  16: "Capture - Debug",
  17: "Deploy - No Snapins",
  18: "Fast Wipe",
  19: "Normal Wipe",
  20: "Full Wipe",
};
/** Types that write or read the host's image, so the image must be usable. */
const IMAGING_TYPES = new Set([1, 2, 8, 15, 16, 17]);
/** Types whose completion updates the host's `deployed`. */
const DEPLOY_TYPES = new Set([1, 8, 15, 17]);

interface HostRecord {
  id: number;
  name: string;
  description: string;
  ip: string;
  mac: string;
  imageId: number;
  deployed: string;
  createdTime: string;
  stalled: boolean;
}

interface ImageRecord {
  id: number;
  name: string;
  sizeGB: number;
  enabled: boolean;
  stored: boolean;
  /** Partition sizes in GB. */
  partitionsGB: number[];
  createdTime: string;
}

interface Progress {
  partition: number;
  /** GB written in the current partition. */
  copiedGB: number;
  percent: number;
  elapsedMs: number;
}

interface TaskRecord {
  id: number;
  name: string;
  hostId: number;
  typeId: number;
  stateId: number;
  imageId: number;
  /** The task body's `shutdown`, as PHP reads it (see phpTruthy). */
  shutdown: boolean;
  createdTime: string;
  checkInTime: string;
  /** Sim ms of check-in, or null before. */
  checkedInAt: number | null;
  /** Sim ms when the transfer started, or null before. */
  startedAt: number | null;
  /** Sim ms up to which copiedGB is computed. */
  advancedTo: number;
  /** Total GB written over all partitions. */
  copiedGB: number;
  /** What the imaging client last posted. */
  reported: Progress | null;
}

interface Fault extends FogSimFault {
  remaining: number;
  status: number;
}

interface Reply {
  status: number;
  /** JSON value to send; undefined means an empty body. */
  json?: unknown;
  text?: string;
  /** Content type of a text body (default text/plain). */
  contentType?: string;
  /** Never answered. */
  hang?: boolean;
}

type Json = Record<string, unknown>;

const EMPTY: Reply = { status: 200, json: null };
const notFound: Reply = { status: 404 };
const notImplemented: Reply = { status: 501 };

export async function startFogSim(options: FogSimOptions = {}): Promise<FogSim> {
  const sim = new FogSimServer(options);
  await sim.listen(options.port ?? 0);
  return sim;
}

class FogSimServer implements FogSim {
  readonly requests: FogSimRequest[] = [];
  readonly #server: Server;
  readonly #hosts: HostRecord[];
  readonly #images: ImageRecord[];
  readonly #tasks: TaskRecord[] = [];
  readonly #faults: Fault[] = [];
  readonly #timeScale: number;
  readonly #queueSize: number;
  readonly #startDelayMs: number;
  readonly #startJitterMs: number;
  readonly #gbPerMs: number;
  readonly #onDeployed: ((hostName: string, task: { shutdown: boolean }) => void) | undefined;
  readonly #taskListeners: ((task: FogSimTask) => void)[] = [];
  readonly #realStart = performance.now();
  readonly #epochStart = Date.now();
  #apiToken: string;
  #userToken: string;
  #timer: NodeJS.Timeout | null = null;
  #url = "";

  constructor(options: FogSimOptions) {
    this.#timeScale = options.timeScale ?? 1;
    if (!(this.#timeScale > 0)) throw new Error("timeScale must be positive");
    this.#queueSize = options.queueSize ?? 10;
    this.#startDelayMs = (options.startDelaySeconds ?? 10) * 1000;
    this.#startJitterMs = (options.startJitterSeconds ?? 0) * 1000;
    this.#gbPerMs = (options.gbPerMinute ?? 8) / 60_000;
    this.#onDeployed = options.onDeployed;
    this.#apiToken = options.apiToken ?? "fog-api-token";
    this.#userToken = options.userToken ?? "fog-user-token";
    const created = this.#timestamp();
    this.#images = (options.images ?? []).map((image) => {
      const weights = image.partitions ?? [1, 3];
      const total = weights.reduce((sum, weight) => sum + weight, 0);
      return {
        id: image.id,
        name: image.name,
        sizeGB: image.sizeGB,
        enabled: image.enabled ?? true,
        stored: image.stored ?? true,
        partitionsGB: weights.map((weight) => (image.sizeGB * weight) / total),
        createdTime: created,
      };
    });
    this.#hosts = (options.hosts ?? []).map((host, index) => ({
      id: index + 1,
      name: host.name,
      description: host.description ?? "",
      ip: host.ip ?? "",
      mac: host.mac.toLowerCase(),
      imageId: host.imageId ?? 0,
      deployed: host.deployed ?? NEVER,
      createdTime: created,
      stalled: false,
    }));
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        response.writeHead(500, { "content-type": "text/plain" });
        response.end(String(error));
      });
    });
  }

  get url(): string {
    return this.#url;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => resolve());
    });
    const { port: bound } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${bound}/fog/`;
    const tickMs = Math.max(MIN_TICK_MS, CLIENT_UPDATE_MS / this.#timeScale);
    this.#timer = setInterval(() => this.#tick(), tickMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      // fetch keeps connections alive; without this close() would wait for them to time out.
      this.#server.closeAllConnections();
    });
  }

  tasks(): FogSimTask[] {
    return this.#tasks.map((task) => ({
      id: task.id,
      name: task.name,
      hostId: task.hostId,
      hostName: this.#hostById(task.hostId)?.name ?? "",
      typeId: task.typeId,
      stateId: task.stateId,
      imageId: task.imageId,
      percent: task.reported?.percent ?? 0,
      partition: task.reported?.partition ?? 0,
      shutdown: task.shutdown,
    }));
  }

  hosts(): FogSimHost[] {
    return this.#hosts.map(({ id, name, imageId, deployed }) => ({ id, name, imageId, deployed }));
  }

  networkBoot(hostName: string): boolean {
    const host = this.#hostByName(hostName);
    const task = this.#activeTask(host.id);
    if (!task) return false;
    const now = this.#simNow();
    task.stateId = 2;
    // A jittered start is a later check-in, as far as the transfer queue is concerned.
    task.checkedInAt = now + Math.random() * this.#startJitterMs;
    task.checkInTime = this.#timestamp(now);
    task.startedAt = null;
    task.copiedGB = 0;
    task.reported = null;
    this.#changed(task);
    this.#promote(now);
    return true;
  }

  stallHost(hostName: string, stalled = true): void {
    const host = this.#hostByName(hostName);
    host.stalled = stalled;
    const task = this.#activeTask(host.id);
    // Resuming must not credit the stalled time as transfer time.
    if (task && !stalled) task.advancedTo = this.#simNow();
  }

  cancelTask(hostName: string): boolean {
    return this.#endTask(hostName, 5);
  }

  failTask(hostName: string): boolean {
    return this.#endTask(hostName, 6);
  }

  /** Ends the host's active task without a deploy: `deployed` stays, the queue moves on. */
  #endTask(hostName: string, stateId: 5 | 6): boolean {
    const task = this.#activeTask(this.#hostByName(hostName).id);
    if (!task) return false;
    task.stateId = stateId;
    this.#changed(task);
    this.#promote(this.#simNow());
    return true;
  }

  failNextRequests(n: number, status: number, fault: FogSimFault = {}): void {
    this.#faults.push({ ...fault, remaining: n, status });
  }

  onTaskChange(listener: (task: FogSimTask) => void): void {
    this.#taskListeners.push(listener);
  }

  #changed(task: TaskRecord): void {
    if (this.#taskListeners.length === 0) return;
    const view = this.tasks().find((t) => t.id === task.id);
    if (view) for (const listener of this.#taskListeners) listener(view);
  }

  setTokens(tokens: { apiToken?: string; userToken?: string }): void {
    if (tokens.apiToken !== undefined) this.#apiToken = tokens.apiToken;
    if (tokens.userToken !== undefined) this.#userToken = tokens.userToken;
  }

  // ---- time and imaging -------------------------------------------------------------------

  /** Sim clock in epoch ms: starts at the wall clock, runs timeScale times faster. */
  #simNow(): number {
    return this.#epochStart + (performance.now() - this.#realStart) * this.#timeScale;
  }

  #timestamp(ms = this.#simNow()): string {
    return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
  }

  /** One imaging-client update period: transfers advance, finish, and queued hosts start. */
  #tick(): void {
    const now = this.#simNow();
    for (const task of this.#tasks) {
      if (task.stateId !== 3 || this.#isStalled(task)) continue;
      const image = this.#imageById(task.imageId);
      const totalGB = image?.sizeGB ?? 0;
      task.copiedGB = Math.min(totalGB, task.copiedGB + (now - task.advancedTo) * this.#gbPerMs);
      task.advancedTo = now;
      if (task.copiedGB >= totalGB) {
        task.stateId = 4;
        task.reported = this.#progressOf(task, image, now);
        if (DEPLOY_TYPES.has(task.typeId)) {
          const host = this.#hostById(task.hostId);
          if (host) {
            host.deployed = this.#timestamp(now);
            this.#onDeployed?.(host.name, { shutdown: task.shutdown });
          }
        }
        this.#changed(task);
      } else {
        task.reported = this.#progressOf(task, image, now);
      }
    }
    this.#promote(now);
  }

  /** Starts checked-in transfers while the storage node has free slots. */
  #promote(now: number): void {
    let running = this.#tasks.filter((task) => task.stateId === 3).length;
    const waiting = this.#tasks
      .filter(
        (task) =>
          task.stateId === 2 &&
          task.checkedInAt !== null &&
          now - task.checkedInAt >= this.#startDelayMs &&
          !this.#isStalled(task),
      )
      .sort((a, b) => (a.checkedInAt ?? 0) - (b.checkedInAt ?? 0) || a.id - b.id);
    for (const task of waiting) {
      if (running >= this.#queueSize) break;
      task.stateId = 3;
      task.startedAt = now;
      task.advancedTo = now;
      task.reported = this.#progressOf(task, this.#imageById(task.imageId), now);
      running += 1;
      this.#changed(task);
    }
  }

  #progressOf(task: TaskRecord, image: ImageRecord | undefined, now: number): Progress {
    const partitions = image?.partitionsGB ?? [0];
    let before = 0;
    let partition = 0;
    // The partition being written is the first one not fully copied.
    while (
      partition < partitions.length - 1 &&
      task.copiedGB >= before + (partitions[partition] ?? 0)
    ) {
      before += partitions[partition] ?? 0;
      partition += 1;
    }
    const size = partitions[partition] ?? 0;
    const copiedGB = task.copiedGB - before;
    const percent = size > 0 ? Math.min(100, (copiedGB / size) * 100) : 100;
    return { partition, copiedGB, percent, elapsedMs: now - (task.startedAt ?? now) };
  }

  #isStalled(task: TaskRecord): boolean {
    return this.#hostById(task.hostId)?.stalled ?? false;
  }

  // ---- HTTP -------------------------------------------------------------------------------

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? "GET";
    const path = new URL(request.url ?? "/", "http://sim").pathname;
    const route = path.startsWith("/fog/") ? path.slice("/fog/".length).replace(/\/$/, "") : null;
    const body = await readBody(request);
    const reply = this.#answer(method, route, request, body);
    const record = { method, path, route: route ?? path, status: reply.status, bytes: 0 };
    this.requests.push(record);
    if (reply.hang) return; // left open; close() drops the connection
    if (reply.text !== undefined) {
      response.writeHead(reply.status, {
        "content-type": reply.contentType ?? "text/plain; charset=utf-8",
      });
      record.bytes = method === "HEAD" ? 0 : Buffer.byteLength(reply.text);
      response.end(method === "HEAD" ? undefined : reply.text);
      return;
    }
    // FOG says JSON even when the body is empty (401, 403, 404, 501).
    response.writeHead(reply.status, { "content-type": "application/json" });
    const text = jsonText(reply);
    record.bytes = Buffer.byteLength(text);
    response.end(text);
  }

  #answer(method: string, route: string | null, request: IncomingMessage, body: string): Reply {
    const fault = this.#takeFault(method, route ?? "");
    if (fault && !fault.afterWork && fault.truncate === undefined) return faultReply(fault);
    const reply = this.#serve(method, route, request, body);
    if (!fault) return reply;
    if (fault.truncate !== undefined) {
      const whole = reply.text ?? jsonText(reply);
      return {
        status: reply.status,
        text: Buffer.from(whole).subarray(0, fault.truncate).toString("utf8"),
        contentType: reply.text === undefined ? "application/json" : reply.contentType,
      };
    }
    return faultReply(fault);
  }

  #serve(method: string, route: string | null, request: IncomingMessage, body: string): Reply {
    // Outside the web root the web server itself answers.
    if (route === null) {
      return { status: 404, text: APACHE_NOT_FOUND, contentType: "text/html; charset=iso-8859-1" };
    }
    const segments = route.split("/");
    if (segments[0] === "system" && (method === "GET" || method === "HEAD")) {
      return segments.length === 2 && (segments[1] === "status" || segments[1] === "info")
        ? { status: 200, text: "success" }
        : notImplemented;
    }
    if (header(request, "fog-api-token") !== this.#apiToken) return { status: 403 };
    if (header(request, "fog-user-token") !== this.#userToken) return { status: 401 };
    return this.#route(method, segments, body);
  }

  #takeFault(method: string, route: string): Fault | null {
    const fault = this.#faults.find(
      (candidate) =>
        candidate.remaining > 0 &&
        (candidate.method === undefined || candidate.method === method) &&
        (candidate.route === undefined ||
          (typeof candidate.route === "string"
            ? candidate.route === route
            : candidate.route.test(route))),
    );
    if (!fault) return null;
    fault.remaining -= 1;
    return fault;
  }

  #route(method: string, segments: string[], body: string): Reply {
    const [kind, second, third, ...rest] = segments;
    if (rest.length > 0) return notImplemented;
    const id = second !== undefined && /^\d+$/.test(second) ? Number(second) : null;

    if (kind === "host") {
      if (method === "GET") {
        if (second === undefined || second === "list" || second === "all") {
          return this.#list(
            "hosts",
            this.#hosts.map((host) => this.#hostJson(host)),
          );
        }
        if (second === "search" && third !== undefined) return this.#search(third);
        if (id !== null && third === undefined)
          return this.#withHost(id, (host) => this.#ok(this.#hostJson(host)));
        return notImplemented;
      }
      if (id === null) return notImplemented;
      if (method === "PUT" && (third === undefined || third === "edit" || third === "update")) {
        return this.#withHost(id, (host) => this.#edit(host, body));
      }
      if (method === "POST" && third === "task") {
        return this.#withHost(id, (host) => this.#createTask(host, body));
      }
      if (method === "DELETE" && third === "cancel") {
        return this.#withHost(id, (host) => this.#cancel(host));
      }
      return notImplemented;
    }
    if (method !== "GET") return notImplemented;
    if (kind === "task") {
      if (second === "current" || second === "active") {
        return this.#list(
          "tasks",
          this.#tasks.filter((task) => task.stateId <= 3).map((task) => this.#taskJson(task)),
        );
      }
      if (second === undefined)
        return this.#list(
          "tasks",
          this.#tasks.map((task) => this.#taskJson(task)),
        );
      if (id !== null && third === undefined) {
        const task = this.#tasks.find((candidate) => candidate.id === id);
        return task ? this.#ok(this.#taskJson(task)) : notFound;
      }
      return notImplemented;
    }
    if (kind === "image") {
      if (second === undefined)
        return this.#list(
          "images",
          this.#images.map((image) => imageJson(image)),
        );
      if (id !== null && third === undefined) {
        const image = this.#imageById(id);
        return image ? this.#ok(imageJson(image)) : notFound;
      }
      return notImplemented;
    }
    if ((kind === "group" || kind === "groupassociation") && second === undefined) {
      return this.#list(`${kind}s`, []);
    }
    return notImplemented;
  }

  #ok(json: unknown): Reply {
    return { status: 200, json };
  }

  #list(key: string, items: unknown[]): Reply {
    return this.#ok({ count: items.length, [key]: items });
  }

  /** Like FOG's search: a case-insensitive substring match over name, description, MAC and IP. */
  #search(encodedTerm: string): Reply {
    let term: string;
    try {
      term = decodeURIComponent(encodedTerm).toLowerCase();
    } catch {
      return notImplemented;
    }
    const found = this.#hosts.filter((host) =>
      [host.name, host.description, host.mac, host.ip].some((field) =>
        field.toLowerCase().includes(term),
      ),
    );
    return this.#list(
      "hosts",
      found.map((host) => this.#hostJson(host)),
    );
  }

  /** Single-host routes answer 404 for unknown ids and for names FOG 1.5 considers invalid. */
  #withHost(id: number, action: (host: HostRecord) => Reply): Reply {
    const host = this.#hostById(id);
    if (!host || !VALID_HOST_NAME.test(host.name)) return notFound;
    return action(host);
  }

  #edit(host: HostRecord, body: string): Reply {
    const vars = parseJsonObject(body);
    if (vars.imageID !== undefined) {
      const imageId = Number(vars.imageID);
      host.imageId = Number.isInteger(imageId) && imageId >= 0 ? imageId : 0;
    }
    if (typeof vars.description === "string") host.description = vars.description;
    return this.#ok(this.#hostJson(host));
  }

  /** Mirrors Host::createImagePackage's checks, in its order. */
  #createTask(host: HostRecord, body: string): Reply {
    const vars = parseJsonObject(body);
    const typeId = Number(vars.taskTypeID);
    if (!Number.isInteger(typeId) || TASK_TYPES[typeId] === undefined) {
      return { status: 501, json: { error: "Invalid tasking type passed" } };
    }
    if (this.#activeTask(host.id)) {
      return { status: 500, json: { error: "Host is already a member of an active task" } };
    }
    if (IMAGING_TYPES.has(typeId)) {
      const image = this.#imageById(host.imageId);
      if (!image) return { status: 500, json: { error: "Image is not valid" } };
      if (!image.enabled) return { status: 500, json: { error: "Image is not enabled" } };
      if (!image.stored) {
        return { status: 500, json: { error: "Could not find any nodes containing this image" } };
      }
    }
    const now = this.#simNow();
    const name =
      typeof vars.taskName === "string" && vars.taskName !== ""
        ? vars.taskName
        : `${TASK_TYPES[typeId]} Task`;
    this.#tasks.push({
      id: this.#tasks.length + 1,
      name,
      hostId: host.id,
      typeId,
      stateId: 1,
      imageId: host.imageId,
      shutdown: phpTruthy(vars.shutdown),
      createdTime: this.#timestamp(now),
      checkInTime: NEVER,
      checkedInAt: null,
      startedAt: null,
      advancedTo: now,
      copiedGB: 0,
      reported: null,
    });
    const created = this.#tasks.at(-1);
    if (created) this.#changed(created);
    return EMPTY;
  }

  /** Cancels the host's active task, if any; the host's `deployed` stays as it was. */
  #cancel(host: HostRecord): Reply {
    const task = this.#activeTask(host.id);
    if (task) {
      task.stateId = 5;
      this.#changed(task);
    }
    this.#promote(this.#simNow());
    return EMPTY;
  }

  // ---- records and their JSON -------------------------------------------------------------

  #hostByName(name: string): HostRecord {
    const host = this.#hosts.find((candidate) => candidate.name === name);
    if (!host) throw new Error(`FOG sim has no host named ${name}`);
    return host;
  }

  #hostById(id: number): HostRecord | undefined {
    return this.#hosts.find((host) => host.id === id);
  }

  #imageById(id: number): ImageRecord | undefined {
    return this.#images.find((image) => image.id === id);
  }

  #activeTask(hostId: number): TaskRecord | undefined {
    return this.#tasks.find((task) => task.hostId === hostId && task.stateId <= 3);
  }

  #hostJson(host: HostRecord): Json {
    const image = this.#imageById(host.imageId);
    const up = host.ip !== "";
    return {
      id: String(host.id),
      name: host.name,
      description: host.description,
      ip: host.ip,
      imageID: String(host.imageId),
      building: "0",
      createdTime: host.createdTime,
      deployed: host.deployed,
      createdBy: "fog",
      useAD: "0",
      ADDomain: "",
      ADOU: "",
      ADUser: "",
      ADPass: "",
      ADPassLegacy: "",
      productKey: "",
      printerLevel: "0",
      kernelArgs: "",
      kernel: "",
      kernelDevice: "",
      init: "",
      pending: "0",
      pub_key: "",
      sec_tok: "",
      sec_time: NEVER,
      pingstatus: up
        ? '<i class="icon-ping-up fa fa-exclamation-circle green" title="Success"></i>'
        : '<i class="icon-ping-down fa fa-exclamation-circle red" title="No Response"></i>',
      biosexit: "",
      efiexit: "",
      enforce: "1",
      primac: host.mac,
      imagename: image?.name ?? "",
      macs: [host.mac],
      image: image ? imageJson(image) : {},
      pingstatuscode: up ? "0" : "6",
      pingstatustext: up ? "Success" : "No Response",
    };
  }

  #taskJson(task: TaskRecord): Json {
    const host = this.#hostById(task.hostId);
    const image = this.#imageById(task.imageId);
    const progress = task.reported;
    const partitionGB = image?.partitionsGB[progress?.partition ?? 0] ?? 0;
    // Truncated to the two decimals FOG shows, so `pct` and `percent` always agree (19.996 is
    // "19.99" and 19, never "20.00" and 19).
    const percent = Math.floor((progress?.percent ?? 0) * 100) / 100;
    const remainingMs =
      progress && percent > 0 ? (progress.elapsedMs * (100 - percent)) / percent : 0;
    return {
      id: String(task.id),
      name: task.name,
      checkInTime: task.checkInTime,
      hostID: String(task.hostId),
      stateID: String(task.stateId),
      createdTime: task.createdTime,
      createdBy: "fog",
      isForced: "0",
      scheduledStartTime: NEVER,
      typeID: String(task.typeId),
      pct: String(Math.floor(percent)).padStart(10, "0"),
      bpm: progress ? ` ${(this.#gbPerMs * 60_000).toFixed(2)}GB/min` : "",
      timeElapsed: progress ? ` ${duration(progress.elapsedMs)}` : "",
      timeRemaining: progress ? ` ${duration(remainingMs)}` : "",
      dataCopied: progress ? `  ${progress.copiedGB.toFixed(2)} GiB` : "",
      percent: percent.toFixed(2),
      dataTotal: progress ? `${partitionGB.toFixed(2)} GiB` : "",
      storagegroupID: "1",
      storagenodeID: "1",
      NFSFailures: "0",
      NFSLastMemberID: "0",
      shutdown: task.shutdown ? "1" : "0",
      passreset: "",
      isDebug: "0",
      imageID: String(task.imageId),
      wol: "1",
      image: image ? imageJson(image) : {},
      host: host ? this.#hostJson(host) : {},
      type: {
        id: String(task.typeId),
        name: TASK_TYPES[task.typeId] ?? "",
        description: "",
        icon: "",
        kernelArgs: "",
        type: "fog",
        isAdvanced: "0",
        access: "both",
      },
      state: {
        id: String(task.stateId),
        name: TASK_STATES[task.stateId] ?? "",
        description: "",
        order: String(task.stateId),
        icon: "",
      },
    };
  }
}

function faultReply(fault: Fault): Reply {
  if (fault.hang) return { status: 0, hang: true };
  if (fault.text !== undefined) {
    return {
      status: fault.status,
      text: fault.text,
      contentType: fault.contentType ?? "application/json",
    };
  }
  return { status: fault.status, json: fault.body };
}

/** A JSON reply's body as FOG prints it (pretty-printed); empty when it has none. */
function jsonText(reply: Reply): string {
  return reply.json === undefined ? "" : JSON.stringify(reply.json, null, 4);
}

function imageJson(image: ImageRecord): Json {
  return {
    id: String(image.id),
    name: image.name,
    description: "",
    path: image.name,
    createdTime: image.createdTime,
    createdBy: "fog",
    building: "0",
    size: image.partitionsGB.map((gb) => String(Math.round(gb * 1024 ** 3))).join(":"),
    imageTypeID: "1",
    imagePartitionTypeID: "1",
    osID: "50",
    format: "0",
    magnet: "",
    protected: "0",
    compress: "6",
    isEnabled: image.enabled ? "1" : "0",
    toReplicate: "1",
    srvsize: String(Math.round(image.sizeGB * 1024 ** 3)),
    os: { id: "50", name: "Linux", description: "" },
    imagetypename: "Single Disk - Resizable",
    imageparttypename: "Everything",
    osname: "Linux",
    storagegroupname: "default",
  };
}

function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}`;
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** FOG json_decodes the body and reads missing fields as null; so does this. */
function parseJsonObject(body: string): Json {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Json)
      : {};
  } catch {
    return {};
  }
}

/**
 * Whether PHP takes a JSON-decoded value for true. FOG 1.5 does not check the task body's
 * `shutdown`: the router hands `$task->shutdown` to Host::createImagePackage, which sets the
 * task's `shutdown` only `if ($shutdown)`; no value is refused. So false, null, 0, 0.0, "", "0"
 * and [] leave the task's "0", and anything else (true, 1, "1", "false", "yes", {}) schedules the
 * shutdown. Simplification: the sim shows every such value as "1", where FOG stores it raw.
 */
function phpTruthy(value: unknown): boolean {
  if (value === undefined || value === null || value === false) return false;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "string") return value !== "" && value !== "0";
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new Error("request body too large");
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
