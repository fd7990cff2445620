/**
 * One HTTP exchange with FOG's REST API, and the translation of FOG's answers into the project's
 * error classes. FOG answers most errors with an empty body (even when the content type says
 * JSON), so nothing here parses a body before checking that there is one.
 *
 * Transient (tried again): no answer, a timeout, 5xx (but 501), 408/429, a 200 whose body is
 * empty, cut short or not JSON. Final: refused tokens (AuthError), FOG's own empty 404
 * (NotFoundError), an HTML page where FOG's API should answer — the server URL is not FOG's web
 * root, e.g. it lacks `/fog/` and Apache answers its own 404 page (ConfigError, with a hint; one
 * answered 200 is asked for again first) — and JSON of the wrong shape (ProtocolError).
 */
import type { z } from "zod";
import {
  AuthError,
  ConfigError,
  NotFoundError,
  ProtocolError,
  TransientError,
  UnreachableError,
} from "../../errors";
import type { Logger } from "../../log";
import type { Secret } from "../../secret";
import { PageInsteadOfJsonError } from "../read-retry";
import { errorBodySchema } from "./fog-schema";

export type FogMethod = "GET" | "PUT" | "POST" | "DELETE";

export interface FogResponse {
  method: FogMethod;
  /** Route relative to the web root, as logged ("host/12/task"). */
  route: string;
  url: string;
  status: number;
  body: string;
  /** The Content-Type header, if any. */
  contentType: string | null;
  /** The Location header of a redirect, if any. */
  location: string | null;
}

export interface FogHttpConfig {
  /** Web root, e.g. http://fog.example.org/fog/ (a missing final "/" is added). */
  server: string;
  apiKey: Secret;
  userKey: Secret;
  timeoutMs: number;
  fetch: typeof fetch;
}

export class FogHttp {
  readonly #config: FogHttpConfig;
  readonly #base: URL;
  readonly #logger: Logger;

  constructor(config: FogHttpConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
    // Routes are joined relative to the web root: without the final "/", new URL() would
    // replace the root's last segment ("fog") instead of appending under it.
    this.#base = new URL(config.server.endsWith("/") ? config.server : `${config.server}/`);
  }

  /**
   * Sends one request and answers whatever status FOG gave. Throws TransientError only when no
   * answer came, or not all of it (network error, timeout); statuses are judged by the caller
   * (see failure()). `timeoutMs` (default: the configured one) bounds the body too.
   */
  async send(
    method: FogMethod,
    route: string,
    body?: unknown,
    timeoutMs = this.#config.timeoutMs,
  ): Promise<FogResponse> {
    const url = new URL(route, this.#base).toString();
    const headers: Record<string, string> = {
      accept: "application/json",
      "fog-api-token": this.#config.apiKey.reveal(),
      "fog-user-token": this.#config.userKey.reveal(),
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    const started = performance.now();
    try {
      const response = await this.#config.fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        // The tokens travel in headers: never replay them to wherever a redirect points.
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        const reason = describeNetworkError(error, timeoutMs);
        throw new TransientError(`FOG's answer to ${method} ${url} was cut short: ${reason}`, {
          cause: error,
        });
      }
      const durationMs = Math.round(performance.now() - started);
      this.#logger.debug({ method, route, status: response.status, durationMs }, "fog request");
      return {
        method,
        route,
        url,
        status: response.status,
        body: text,
        contentType: response.headers.get("content-type"),
        location: response.headers.get("location"),
      };
    } catch (error) {
      const durationMs = Math.round(performance.now() - started);
      const reason = describeNetworkError(error, timeoutMs);
      this.#logger.debug({ method, route, durationMs, error: reason }, "fog request failed");
      if (error instanceof TransientError) throw error;
      throw new UnreachableError(`FOG did not answer ${method} ${url}: ${reason}`, reason, {
        cause: error,
      });
    }
  }
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  if (error instanceof Error) {
    if (error.name === "TimeoutError" || error.name === "AbortError") {
      return `no answer within ${timeoutMs / 1000} s`;
    }
    // fetch reports "fetch failed" and keeps the reason (ECONNREFUSED, ENOTFOUND…) in cause.
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}

export function isSuccess(response: FogResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

/** FOG's `{"error": "…"}` message, when the body is one. */
export function fogErrorMessage(response: FogResponse): string | null {
  if (response.body.trim() === "") return null;
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(response.body));
    return parsed.success ? parsed.data.error : null;
  } catch {
    return null;
  }
}

/** A web server's or PHP's page rather than FOG's JSON (FOG never sends HTML from its API). */
export function isHtml(response: FogResponse): boolean {
  return /\bhtml\b/i.test(response.contentType ?? "") || /^\s*</.test(response.body);
}

/** An HTML page where FOG's API should have answered: the server URL leads elsewhere. */
export function htmlAnswer(response: FogResponse): ConfigError {
  const { status, method, url } = response;
  const where = new URL(url);
  const hint = where.pathname.includes("/fog/")
    ? "is the server URL FOG's web root (e.g. http://fog.example.org/fog/), and FOG installed there?"
    : `FOG's API is under /fog/ (e.g. ${where.origin}/fog/)`;
  const message = `FOG answered an HTML page (${status}) where JSON was expected at ${method} ${url}: ${hint}`;
  // Answered with 200 it may be a login page or portal passing by: a read asks again first.
  return status >= 200 && status < 300
    ? new PageInsteadOfJsonError(message)
    : new ConfigError(message);
}

/** The error for a response that is not a success. Token values never appear in messages. */
export function failure(response: FogResponse): Error {
  const { status, method, url } = response;
  const message = fogErrorMessage(response);
  const detail = message ? `: ${message}` : "";
  if (status === 403) return new AuthError(`FOG refused the API token (403) at ${url}`);
  if (status === 401) return new AuthError(`FOG refused the user token (401) at ${url}`);
  // FOG's own 4xx answers are empty: an HTML 404 is the web server's, for a path that is not
  // FOG's (a server URL without /fog/), not "FOG has no such object".
  if (status < 500 && (status < 300 || status >= 400) && isHtml(response)) {
    return htmlAnswer(response);
  }
  if (status === 404) return new NotFoundError(`FOG has no such object (404): ${method} ${url}`);
  if (status === 501) {
    // FOG answers 501 both for a route it does not have and for an invalid tasking type.
    return new ProtocolError(`FOG does not support ${method} ${url} (501)${detail}`);
  }
  if (status >= 500 || status === 408 || status === 429) {
    return new TransientError(`FOG failed on ${method} ${url} (${status})${detail}`);
  }
  if (status >= 300 && status < 400) {
    // FOG redirects API calls to its login page when the API is disabled in its settings.
    const target = response.location ? ` to ${response.location}` : "";
    return new ProtocolError(
      `FOG redirected ${method} ${url}${target} (${status}); is the API enabled in FOG's settings?`,
    );
  }
  return new ProtocolError(`FOG answered ${status} to ${method} ${url}${detail}`);
}

/**
 * Parses a successful response's JSON body against a schema. An empty or unreadable body is a
 * garbled answer (PHP dying mid-answer, a connection cut): transient. An HTML page is the wrong
 * server (ConfigError); JSON of another shape is FOG's word (ProtocolError).
 */
export function parseBody<T extends z.ZodType>(response: FogResponse, schema: T): z.output<T> {
  const { method, url } = response;
  const text = response.body.trim();
  if (text === "") {
    throw new TransientError(
      `FOG answered an empty body to ${method} ${url} (expected JSON): cut short?`,
    );
  }
  if (isHtml(response)) throw htmlAnswer(response);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TransientError(
      `FOG answered a garbled body to ${method} ${url} (${text.length} characters, not JSON): cut short?`,
    );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join(".")}` : "";
    throw new ProtocolError(
      `FOG answered an unexpected shape to ${method} ${url}${where}: ${issue?.message ?? "invalid"}`,
    );
  }
  return parsed.data;
}
