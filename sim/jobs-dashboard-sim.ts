/**
 * A stand-in for the later dashboard's jobs API (reference/dashboard-apis.md §2) that answers the
 * way the real Django app does, not the way a client would like:
 * - the lab token in the `auth-token` header, else a 403 HTML page — an unknown lab too;
 * - no trailing slash: `…/jobs/new/` is Django's HTML 404, and so is a job id that is no integer;
 * - a POST to `jobs/new|current|done` is refused by the CSRF check (403 page) before auth;
 * - an unknown job or task id is a 500 HTML page (an uncaught ObjectDoesNotExist), not a 404; the
 *   job id in a task's URL is not checked against the task;
 * - a status post is read as form fields only: a JSON body leaves the task as it was, and the
 *   answer still says 200; the answer is `{"task": <config>, "meta": {"status", "job",
 *   "message"}}`, its status echoed as the text posted;
 * - a listing holds each job with at least one task at its status, with only those tasks; tasks
 *   at 300 are listed nowhere; every config carries its task's `lab_token` ("null" until the lab
 *   posts one), kept per task as posted;
 * - at a booking's end (endBooking) the tasks are re-issued at 0 with cleanup configs, as the
 *   2022 dashboard does or (`cleanup: "2019"`) the 2019 one.
 *
 * Test-facing controls: jobs built from realistic task configs (the builders below), failures of
 * the next requests (a 500 page, a reset connection, an answer lost after the work was done), and
 * every status post received, in order.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** A task kind as the payload names it; tests may serve kinds the client does not know. */
export type SimTaskKind = "hardware" | "network" | "access" | "software" | "snapshot" | string;

export interface SimTask {
  readonly taskId: string;
  readonly kind: SimTaskKind;
  /** 0 new, 100 current, 200 done, 300 error (whatever integer the lab posted). */
  status: number;
  /** The config without `lab_token`, as the dashboard would render it. */
  config: Record<string, unknown>;
  /** TaskRelation.lab_token: "null" until the lab posts one. */
  labToken: string;
  message: string;
}

export interface SimJob {
  readonly id: number;
  readonly tasks: SimTask[];
  /** Whether endBooking re-issued its tasks as cleanup. */
  ended: boolean;
}

/** What a builder makes: a task of a kind, with its config, before it joins a job. */
export interface TaskSpec {
  kind: SimTaskKind;
  config: Record<string, unknown>;
  taskId?: string;
  status?: number;
  labToken?: string;
}

/** One POST to a task route that passed auth, in the order received. */
export interface StatusPost {
  /** The job id as the URL named it (not checked against the task). */
  jobId: string;
  taskId: string;
  contentType: string;
  /** The raw body. */
  body: string;
  /** The form fields the dashboard read: none unless the body was form-encoded. */
  fields: Record<string, string>;
  /** Whether the task was found and saved. */
  applied: boolean;
}

export interface SimJobsRequest {
  method: string;
  path: string;
  /** "none" without an auth-token header; its value is never kept. */
  token: "none" | "right" | "wrong";
  /** 0 for a request whose answer was never sent (reset, lost). */
  status: number;
}

/**
 * A failure of the next request: `status` answers that status (an HTML page) without doing the
 * work, `reset` drops the connection before the work, `lost` does the work and then drops the
 * connection without an answer.
 */
export type SimFailure = { kind: "status"; status: number } | { kind: "reset" } | { kind: "lost" };

export interface JobsDashboardSimOptions {
  port?: number;
  /** The lab's name on the dashboard (default "sim-lab"). */
  lab?: string;
  /** The lab token (default "sim-lab-token"). */
  token?: string;
  /** Which dashboard's booking-end cleanup to play (default "2022"). */
  cleanup?: "2019" | "2022";
}

export interface JobsDashboardSim {
  /** Root of the dashboard, without a trailing "/" (e.g. http://127.0.0.1:40123). */
  readonly url: string;
  readonly lab: string;
  readonly token: string;
  readonly jobs: readonly SimJob[];
  readonly requests: readonly SimJobsRequest[];
  readonly statusPosts: readonly StatusPost[];
  /** Adds a job (its id the next free one unless given) with its tasks at 0 unless given. */
  addJob(tasks: TaskSpec[], id?: number): SimJob;
  job(id: number): SimJob | undefined;
  task(taskId: string): SimTask | undefined;
  /** The booking ended: its tasks are re-issued at 0 as cleanup (see the module comment). */
  endBooking(jobId: number): void;
  /**
   * Whether the dashboard still holds the booking's hosts: after its end, while any hardware or
   * network task is not at 200 (tasks left at 300 keep them).
   */
  hostsAllocated(jobId: number): boolean;
  /** The next `count` requests, whatever they are, fail as `failure` says. */
  failNext(count: number, failure: SimFailure): void;
  close(): Promise<void>;
}

// --- builders: configs as the dashboard renders them -------------------------------------------

export interface HardwareSpec {
  hostLabId: string;
  imageId?: string | number;
  hostname?: string;
  power?: "on" | "off";
  ipmiCreate?: boolean;
  /** `ipmi_create` as a JSON boolean (2019, default) or the text "True"/"False" (2022). */
  ipmiSpelling?: "boolean" | "python";
}

export function hardwareTask(spec: HardwareSpec): TaskSpec {
  const ipmi = spec.ipmiCreate ?? false;
  return {
    kind: "hardware",
    config: {
      id: spec.hostLabId,
      image: spec.imageId ?? 3,
      hostname: spec.hostname ?? `${spec.hostLabId}-pod`,
      power: spec.power ?? "on",
      ipmi_create: spec.ipmiSpelling === "python" ? (ipmi ? "True" : "False") : ipmi,
    },
  };
}

export interface NetworkSpec {
  hostLabId: string;
  /** VLANs by MAC address. */
  interfaces: Record<string, Array<{ vlanId: number; tagged: boolean }>>;
}

export function networkTask(spec: NetworkSpec): TaskSpec {
  const interfaces: Record<string, unknown> = {};
  for (const [mac, vlans] of Object.entries(spec.interfaces)) {
    interfaces[mac] = vlans.map((v) => ({ vlan_id: v.vlanId, tagged: v.tagged }));
  }
  return { kind: "network", config: { [spec.hostLabId]: interfaces } };
}

export interface AccessSpec {
  accessType: "vpn" | "ssh";
  /** The dashboard's user id. */
  user: number;
  /** ssh: the user's public key and the hosts it goes on. */
  key?: string;
  hosts?: string[];
}

export function accessTask(spec: AccessSpec): TaskSpec {
  const context =
    spec.accessType === "ssh" ? { key: spec.key ?? SAMPLE_KEY, hosts: spec.hosts ?? [] } : {};
  return {
    kind: "access",
    config: { access_type: spec.accessType, user: spec.user, revoke: false, context },
  };
}

export const SAMPLE_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHhzRm9ja0tleUZvclRlc3RzT25seQAAAAAAAA ada@laptop";

export interface SoftwareSpec {
  bookingId: number;
  installer?: string;
  scenario?: string;
  /** Role by host lab id. */
  roles?: Record<string, string>;
  lab?: string;
}

export function softwareTask(spec: SoftwareSpec): TaskSpec {
  const lab = spec.lab ?? "sim-lab";
  const opnfv: Record<string, unknown> = {};
  if (spec.installer) opnfv.installer = spec.installer;
  if (spec.scenario) opnfv.scenario = spec.scenario;
  opnfv.pdf = `/api/labs/${lab}/booking/${spec.bookingId}/pdf`;
  opnfv.idf = `/api/labs/${lab}/booking/${spec.bookingId}/idf`;
  const roles = Object.entries(spec.roles ?? {});
  if (roles.length > 0) opnfv.roles = roles.map(([host, role]) => ({ [host]: role }));
  return { kind: "software", config: { opnfv } };
}

export function snapshotTask(spec: {
  hostLabId: string;
  dashboardId: number;
  image?: string;
}): TaskSpec {
  const config: Record<string, unknown> = { host: spec.hostLabId, dashboard_id: spec.dashboardId };
  if (spec.image !== undefined) config.image = spec.image;
  return { kind: "snapshot", config };
}

// --- the server ----------------------------------------------------------------------------------

interface Reply {
  status: number;
  /** JSON, or an HTML page when `html`. */
  body: unknown;
  html?: boolean;
}

const LISTINGS: Readonly<Record<string, number>> = { new: 0, current: 100, done: 200 };

/** Django's own pages with DEBUG off. */
const page = (title: string, text: string): string =>
  `<!doctype html>\n<html lang="en">\n<head>\n  <title>${title}</title>\n</head>\n<body>\n  <h1>${title}</h1><p>${text}</p>\n</body>\n</html>\n`;
const NOT_FOUND: Reply = {
  status: 404,
  html: true,
  body: page("Not Found", "The requested resource was not found on this server."),
};
const FORBIDDEN: Reply = { status: 403, html: true, body: "\n<h1>403 Forbidden</h1>\n\n" };
const CSRF_FAILED: Reply = {
  status: 403,
  html: true,
  body: page("403 Forbidden", "CSRF verification failed. Request aborted."),
};
const SERVER_ERROR: Reply = { status: 500, html: true, body: "\n<h1>Server Error (500)</h1>\n\n" };

class JobsDashboardSimServer implements JobsDashboardSim {
  url = "";
  readonly lab: string;
  readonly token: string;
  readonly jobs: SimJob[] = [];
  readonly requests: SimJobsRequest[] = [];
  readonly statusPosts: StatusPost[] = [];
  readonly #cleanup: "2019" | "2022";
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #failures: SimFailure[] = [];

  constructor(options: JobsDashboardSimOptions) {
    this.lab = options.lab ?? "sim-lab";
    this.token = options.token ?? "sim-lab-token";
    this.#cleanup = options.cleanup ?? "2022";
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
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  addJob(specs: TaskSpec[], id?: number): SimJob {
    const jobId = id ?? Math.max(0, ...this.jobs.map((j) => j.id)) + 1;
    if (this.job(jobId)) throw new Error(`job ${jobId} exists`);
    const job: SimJob = {
      id: jobId,
      ended: false,
      tasks: specs.map((spec) => ({
        taskId: spec.taskId ?? randomUUID(),
        kind: spec.kind,
        status: spec.status ?? 0,
        config: structuredClone(spec.config),
        labToken: spec.labToken ?? "null",
        message: "",
      })),
    };
    this.jobs.push(job);
    return job;
  }

  job(id: number): SimJob | undefined {
    return this.jobs.find((job) => job.id === id);
  }

  task(taskId: string): SimTask | undefined {
    for (const job of this.jobs) {
      const found = job.tasks.find((task) => task.taskId === taskId);
      if (found) return found;
    }
    return undefined;
  }

  endBooking(jobId: number): void {
    const job = this.job(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    job.ended = true;
    for (const task of job.tasks) {
      const cleanup = this.#cleanupConfig(task);
      if (cleanup === null) continue;
      task.config = cleanup;
      task.status = 0;
    }
  }

  /** The task's cleanup config, or null when the dashboard does not re-issue it. */
  #cleanupConfig(task: SimTask): Record<string, unknown> | null {
    const config = structuredClone(task.config);
    switch (task.kind) {
      case "hardware":
        config.power = "off";
        // 2019 sends no image, so the lab does not reimage; 2022 sends the clean config.
        if (this.#cleanup === "2019") delete config.image;
        return config;
      case "network":
        for (const [host, interfaces] of Object.entries(config)) {
          if (typeof interfaces !== "object" || interfaces === null) continue;
          config[host] = Object.fromEntries(Object.keys(interfaces).map((mac) => [mac, []]));
        }
        return config;
      case "software":
        return this.#cleanup === "2019" ? { opnfv: {} } : config;
      case "access":
        // Only vpn tasks are revoked; ssh tasks stay as they are.
        if (config.access_type !== "vpn") return null;
        config.revoke = true;
        return config;
      default:
        return null;
    }
  }

  hostsAllocated(jobId: number): boolean {
    const job = this.job(jobId);
    if (!job) return false;
    if (!job.ended) return true;
    return job.tasks.some(
      (task) => (task.kind === "hardware" || task.kind === "network") && task.status !== 200,
    );
  }

  failNext(count: number, failure: SimFailure): void {
    for (let i = 0; i < count; i++) this.#failures.push(failure);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const body = await readBody(req);
    const header = req.headers["auth-token"];
    const given = Array.isArray(header) ? header[0] : header;
    const token = given === undefined ? "none" : given === this.token ? "right" : "wrong";
    const record = (status: number) => this.requests.push({ method, path, token, status });

    const failure = this.#failures.shift();
    if (failure?.kind === "status") {
      record(failure.status);
      send(res, {
        status: failure.status,
        html: true,
        body: page(`Error (${failure.status})`, ""),
      });
      return;
    }
    if (failure?.kind === "reset") {
      record(0);
      req.socket.destroy();
      return;
    }
    const reply = this.#route(req, method, path, body, token === "right");
    if (failure?.kind === "lost") {
      record(0);
      req.socket.destroy();
      return;
    }
    record(reply.status);
    send(res, reply);
  }

  #route(req: IncomingMessage, method: string, path: string, body: string, authed: boolean): Reply {
    const { pathname } = new URL(path, "http://sim.invalid");
    const match = /^\/api\/labs\/([^/]+)\/jobs\/([^/]+)(?:\/([^/]+))?$/.exec(pathname);
    if (!match) return NOT_FOUND;
    const [, lab = "", jobPart = "", taskPart] = match;
    const listing = LISTINGS[jobPart];
    if (listing !== undefined && taskPart === undefined) {
      // The listing views are not csrf_exempt: Django's middleware refuses a POST before them.
      if (method === "POST") return CSRF_FAILED;
      if (!this.#authorized(lab, authed)) return FORBIDDEN;
      return { status: 200, body: this.#listing(listing) };
    }
    if (!/^[0-9]+$/.test(jobPart)) return NOT_FOUND;
    if (!this.#authorized(lab, authed)) return FORBIDDEN;
    if (taskPart === undefined) {
      if (method !== "GET") return { status: 405, body: "", html: true }; // not modelled
      const job = this.job(Number(jobPart));
      return job ? { status: 200, body: renderJob(job, () => true) } : SERVER_ERROR;
    }
    const taskId = safeDecode(taskPart);
    if (method === "GET") {
      const task = taskId === null ? undefined : this.task(taskId);
      return task ? { status: 200, body: renderConfig(task) } : SERVER_ERROR;
    }
    if (method !== "POST") return { status: 405, body: "", html: true };
    return this.#postStatus(req, jobPart, taskId ?? taskPart, body);
  }

  #authorized(lab: string, authed: boolean): boolean {
    return safeDecode(lab) === this.lab && authed;
  }

  #listing(status: number): unknown[] {
    return this.jobs
      .map((job) => renderJob(job, (task) => task.status === status))
      .filter((rendered) => Object.keys(rendered.payload).length > 0);
  }

  /** views.specific_task's POST: request.POST's fields, whichever are there. */
  #postStatus(req: IncomingMessage, jobId: string, taskId: string, body: string): Reply {
    const contentType = (req.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
    const fields =
      contentType === "application/x-www-form-urlencoded"
        ? Object.fromEntries(new URLSearchParams(body))
        : {};
    const post: StatusPost = { jobId, taskId, contentType, body, fields, applied: false };
    this.statusPosts.push(post);
    const task = this.task(taskId);
    if (!task) return SERVER_ERROR;
    // task.save(): an IntegerField that is no integer, or a lab_token past its varchar(50), fail.
    if (fields.status !== undefined && !/^\s*[+-]?\d+\s*$/.test(fields.status)) return SERVER_ERROR;
    if (fields.lab_token !== undefined && fields.lab_token.length > 50) return SERVER_ERROR;
    if (fields.status !== undefined) task.status = Number(fields.status);
    if (fields.message !== undefined) task.message = fields.message;
    if (fields.lab_token !== undefined) task.labToken = fields.lab_token;
    post.applied = true;
    const job = this.jobs.find((j) => j.tasks.includes(task));
    return {
      status: 200,
      body: {
        task: renderConfig(task),
        meta: {
          // The model field holds what was assigned: the posted text, until read back.
          status: fields.status ?? task.status,
          job: `Job object (${job?.id})`,
          message: task.message,
        },
      },
    };
  }
}

export async function startJobsDashboardSim(
  options: JobsDashboardSimOptions = {},
): Promise<JobsDashboardSim> {
  const sim = new JobsDashboardSimServer(options);
  await sim.listen(options.port ?? 0);
  return sim;
}

function renderConfig(task: SimTask): Record<string, unknown> {
  return { ...structuredClone(task.config), lab_token: task.labToken };
}

function renderJob(
  job: SimJob,
  include: (task: SimTask) => boolean,
): { id: number; payload: Record<string, Record<string, unknown>> } {
  const payload: Record<string, Record<string, unknown>> = {};
  for (const task of job.tasks) {
    if (!include(task)) continue;
    payload[task.kind] ??= {};
    payload[task.kind]![task.taskId] = renderConfig(task);
  }
  return { id: job.id, payload };
}

function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, reply: Reply): void {
  res.statusCode = reply.status;
  if (reply.html) {
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.end(String(reply.body));
    return;
  }
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify(reply.body));
}
