/**
 * The status page and the API behind it, as one function from request to response: served on
 * one machine by lib/web/server.ts (node:http) and in the cloud by functions/web.ts (a Lambda
 * function URL). Routes:
 *
 *   GET /                          the page (lib/web/page.ts)
 *   GET /api/overview              hosts and bookings
 *   GET /api/bookings/{id}         one booking with the timeline of each of its executions
 *   GET /api/bookings/{id}/pod.svg its pod, drawn from the installer config it is built from
 *   GET /metrics                   Prometheus text (lib/web/metrics.ts)
 *
 * Every answer is built from a list of fields chosen here, never from a whole record: a booking's
 * sealed credentials, a host's key and any config secret never reach a page.
 */
import type { InstallerConfig } from "../config/types";
import { type Booking, executionName, OPEN_END, type Phase } from "../domain/booking";
import { type Timeline, timelineOf } from "../domain/execution-history";
import type { Host } from "../domain/host";
import { errorMessage } from "../errors";
import { type PodMacs, podDrawing } from "../pod/drawing";
import type { WorkflowEngine } from "../ports/engine";
import type { Store } from "../ports/store";
import type { Secret } from "../secret";
import { showsToken, TOKEN_COOKIE } from "./auth";
import { pageHtml } from "./page";

export interface WebRequest {
  method: string;
  /** The path, without the query. */
  path: string;
  query: URLSearchParams;
  headers: { authorization?: string | undefined; cookie?: string | undefined };
}

export interface WebResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface WebSources {
  store: Pick<Store, "listHosts" | "listBookings" | "getBooking">;
  engine: Pick<WorkflowEngine, "history">;
  /** The installer config a booking's pod is built from (lib/config/lookup.ts). */
  installerConfigFor(installer: string | null): InstallerConfig;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Null: no token asked (loopback only; lib/web/server.ts refuses it anywhere else). */
  token: Secret | null;
  /** Mark the cookie Secure (served over https, as in the cloud). */
  secureCookie: boolean;
}

/** How long one read of the store serves every viewer: the page asks every 2 seconds. */
const OVERVIEW_TTL_MS = 1_000;

export type WebApp = (request: WebRequest) => Promise<WebResponse>;

export function createWebApp(sources: WebSources): WebApp {
  let cached: { at: number; body: Promise<string> } | null = null;
  const overview = (): Promise<string> => {
    if (!cached || Date.now() - cached.at > OVERVIEW_TTL_MS) {
      const body = overviewBody(sources);
      cached = { at: Date.now(), body };
      // A failed read is not kept: the next request reads again.
      body.catch(() => {
        if (cached?.body === body) cached = null;
      });
    }
    return cached.body;
  };

  return async (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return json(405, { error: "only GET is served" }, { allow: "GET, HEAD" });
    }
    if (sources.token) {
      const credentials = {
        authorization: request.headers.authorization,
        cookie: request.headers.cookie,
        queryToken: request.query.get("token"),
      };
      if (!showsToken(sources.token, credentials)) {
        return json(401, { error: "a token is needed: ?token=… once, or Authorization: Bearer" });
      }
      if (request.query.has("token")) {
        // The token leaves the address: it is kept in a cookie the page's scripts cannot read.
        const secure = sources.secureCookie ? "; Secure" : "";
        return {
          status: 303,
          headers: {
            location: request.path,
            "set-cookie": `${TOKEN_COOKIE}=${encodeURIComponent(sources.token.reveal())}; HttpOnly; SameSite=Strict; Path=/${secure}`,
            "cache-control": "no-store",
          },
          body: "",
        };
      }
    }
    try {
      return await route(request.path);
    } catch (error) {
      return json(500, { error: errorMessage(error) });
    }
  };

  async function route(path: string): Promise<WebResponse> {
    if (path === "/" || path === "/index.html") {
      return {
        status: 200,
        headers: {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          "content-security-policy":
            "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; " +
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
          "x-content-type-options": "nosniff",
        },
        body: pageHtml(),
      };
    }
    if (path === "/api/overview") return jsonText(200, await overview());
    if (path === "/metrics") {
      const metrics = await sources.metrics();
      return { status: 200, headers: { "content-type": metrics.contentType }, body: metrics.body };
    }
    const match = /^\/api\/bookings\/([^/]+)(\/pod\.svg)?$/.exec(path);
    if (match?.[1]) {
      let id: string;
      try {
        id = decodeURIComponent(match[1]);
      } catch {
        return json(400, { error: "the booking id is not a valid URL path segment" });
      }
      const booking = await sources.store.getBooking(id);
      if (!booking) return json(404, { error: `no booking ${id} in the store` });
      return match[2] ? podSvg(booking) : json(200, await bookingDetail(booking));
    }
    return json(404, { error: `nothing at ${path}` });
  }

  async function bookingDetail(booking: Booking) {
    const executions: (Timeline & { phase: Phase; generation: number })[] = [];
    const runs: [Phase, number][] = [
      ...range(booking.provisionGeneration).map((g): [Phase, number] => ["provision", g]),
      ...range(booking.releaseGeneration).map((g): [Phase, number] => ["release", g]),
    ];
    for (const [phase, generation] of runs) {
      const name = executionName(booking.id, phase, generation);
      const events = await sources.engine.history(name);
      if (events) executions.push({ ...timelineOf(name, events), phase, generation });
    }
    return { booking: bookingView(booking), executions };
  }

  function podSvg(booking: Booking): WebResponse {
    let config: InstallerConfig;
    try {
      config = sources.installerConfigFor(booking.installer);
    } catch (error) {
      return json(404, { error: errorMessage(error) });
    }
    const svg = podDrawing({ hostName: booking.hostName, config, macs: recordedMacs(booking) });
    return {
      status: 200,
      headers: {
        "content-type": "image/svg+xml; charset=utf-8",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
      body: svg,
    };
  }
}

async function overviewBody(sources: WebSources): Promise<string> {
  const [hosts, bookings] = await Promise.all([
    sources.store.listHosts(),
    sources.store.listBookings(),
  ]);
  bookings.sort((a, b) => b.start.localeCompare(a.start) || a.id.localeCompare(b.id));
  return JSON.stringify({
    generatedAt: new Date().toISOString(),
    hosts: hosts.sort((a, b) => a.name.localeCompare(b.name)).map(hostView),
    bookings: bookings.map(bookingView),
  });
}

function hostView(host: Host) {
  return {
    name: host.name,
    state: host.state,
    bookingId: host.bookingId,
    reason: host.reason,
    failures: host.failures,
    updatedAt: host.updatedAt,
  };
}

/** What a booking's page shows; never its access record (sealed credentials) or its steps' data. */
export function bookingView(booking: Booking) {
  return {
    id: booking.id,
    hostName: booking.hostName,
    state: booking.state,
    progress: booking.progress,
    start: booking.start,
    // Null for a booking open until ended (a job's, or a manual one): the page shows no end.
    end: booking.end === OPEN_END ? null : booking.end,
    user: booking.user,
    installer: booking.installer,
    scenario: booking.scenario,
    purpose: booking.purpose,
    failure: booking.failure,
    cleanup: booking.cleanup,
    handover: booking.access?.handover ?? null,
    vpnUser: booking.access?.vpnUser ?? null,
    waitingFor: booking.wait && booking.wait.outcome === null ? booking.wait.event : null,
    waitingSince: booking.wait?.since ?? null,
    updatedAt: booking.updatedAt,
  };
}

/** The MACs BuildPod recorded in the current run (lifecycle/pod.ts), while it is a provision. */
function recordedMacs(booking: Booking): PodMacs | null {
  const step = booking.run?.phase === "provision" ? booking.run.steps.buildPod : undefined;
  if (!step?.done) return null;
  const result = step.result;
  if (typeof result !== "object" || result === null || Array.isArray(result)) return null;
  const macs = result.macs;
  if (typeof macs !== "object" || macs === null || Array.isArray(macs)) return null;
  const out: PodMacs = {};
  for (const [domain, nics] of Object.entries(macs)) {
    if (typeof nics !== "object" || nics === null || Array.isArray(nics)) continue;
    out[domain] = {};
    for (const [source, mac] of Object.entries(nics)) {
      if (typeof mac === "string") out[domain][source] = mac;
    }
  }
  return out;
}

function range(count: number): number[] {
  return Array.from({ length: Math.max(0, count) }, (_, index) => index + 1);
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): WebResponse {
  return jsonText(status, JSON.stringify(value), headers);
}

function jsonText(status: number, body: string, headers: Record<string, string> = {}) {
  return {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
    body,
  };
}
