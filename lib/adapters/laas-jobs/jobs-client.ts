/**
 * The later dashboard's jobs API (reference/dashboard-apis.md §2) for one lab, always with
 * `auth-token: <lab token>`, on routes under `{dashboard}/api/labs/<lab>/` without a trailing
 * slash:
 * - `GET jobs/new|current|done`, `GET jobs/<job>`, `GET jobs/<job>/<task>`: read with the read
 *   retry (read-retry.ts);
 * - `POST jobs/<job>/<task>`: a task's status, as form fields (the dashboard reads `request.POST`
 *   and silently ignores a JSON body), posted again while its answer is lost.
 *
 * Failures are classed where they are met: 403 (an HTML page: a wrong token or an unknown lab) an
 * AuthError naming the lab; 500 on a job or task route — Django's page for an uncaught
 * ObjectDoesNotExist, what an unknown id gets — tried again as any 5xx, then a NotFoundError when
 * every attempt met it; no answer, other 5xx, 408, 429 or a body cut short a TransientError; 404
 * or an HTML page where JSON should be a ConfigError; JSON of the wrong shape a ProtocolError.
 * The token is a Secret: it goes in the header and nowhere else (no message, no log line), and
 * neither does a status message (it may hold the user's credentials).
 */
import {
  AuthError,
  ConfigError,
  errorMessage,
  NotFoundError,
  OutcomeUnknownError,
  ProtocolError,
  TransientError,
} from "../../errors";
import type { Logger } from "../../log";
import type {
  Job,
  JobListing,
  JobsDashboard,
  StatusUpdate,
  Task,
} from "../../ports/jobs-dashboard";
import type { Secret } from "../../secret";
import {
  DEFAULT_READ_RETRY,
  PageInsteadOfJsonError,
  type ReadRetryPolicy,
  readWithRetry,
} from "../read-retry";
import { type RetryPolicy, retryTransient } from "../retry";
import { parseJob, parseListing, type SetAside } from "./job-schema";
import { checkTask, isObject, kindOfConfig } from "./task-schema";
import { displayUrl, type JobsRoutes, jobsRoutes } from "./urls";

export interface LaasJobsDashboardOptions {
  /** Dashboard root, e.g. https://labs.lfnetworking.org/ (a trailing "/" is optional). */
  url: string;
  /** The lab's name on the dashboard (`api/labs/<lab>/…`). */
  lab: string;
  /** The lab token the dashboard issued (header `auth-token`). */
  token: Secret;
  /** Per-request timeout, body included (default 30). */
  requestTimeoutSeconds?: number;
  /** How reads are tried again (default: 4 attempts within 20 s, see read-retry.ts). */
  retry?: Partial<ReadRetryPolicy>;
  /** How a status post whose answer was lost is posted again (default: DEFAULT_POST_RETRY). */
  postRetry?: Partial<RetryPolicy>;
}

/** A status post is made at most 5 times, none started 20 s after the first. */
export const DEFAULT_POST_RETRY: RetryPolicy = {
  retries: 4,
  minDelayMs: 500,
  maxDelayMs: 4_000,
  maxRetryMs: 20_000,
};

/** The dashboard's TaskRelation.lab_token is a CharField of 50 characters. */
export const MAX_LAB_TOKEN_LENGTH = 50;

const DEFAULT_TIMEOUT_SECONDS = 30;

/**
 * A 500 on a job or task route: an unknown id, or a server error. Tried again as any 5xx; a read
 * or post that met nothing else is then a NotFoundError.
 */
class ServerError500 extends TransientError {}

export class LaasJobsDashboard implements JobsDashboard {
  readonly lab: string;
  readonly #token: Secret;
  readonly #routes: JobsRoutes;
  readonly #timeoutMs: number;
  readonly #retry: ReadRetryPolicy;
  readonly #postRetry: RetryPolicy;
  readonly #logger: Logger;

  constructor(options: LaasJobsDashboardOptions, logger: Logger) {
    this.lab = options.lab;
    this.#token = options.token;
    this.#routes = jobsRoutes(options.url, options.lab);
    this.#timeoutMs = (options.requestTimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000;
    this.#retry = { ...DEFAULT_READ_RETRY, ...options.retry };
    this.#postRetry = { ...DEFAULT_POST_RETRY, ...options.postRetry };
    this.#logger = logger.child({ component: "laas-jobs-dashboard", lab: options.lab });
  }

  async listJobs(which: JobListing): Promise<Job[]> {
    const url = this.#routes.listing(which);
    const body = await this.#getJson(url, null);
    const parsed = parseListing(body);
    if (parsed === null) {
      throw new ProtocolError(
        `dashboard answered something other than a list of jobs at ${displayUrl(url)}`,
      );
    }
    this.#warnSetAside(parsed.setAside, which);
    // A job all of whose listed tasks were set aside has nothing to act on.
    const jobs = parsed.jobs.filter((job) => job.tasks.length > 0);
    this.#logger.debug({ listing: which, jobs: jobs.length }, "listed dashboard jobs");
    return jobs;
  }

  async getJob(jobId: number): Promise<Job> {
    const url = this.#routes.job(jobId);
    const body = await this.#getJson(url, `job ${jobId}`);
    const parsed = parseJob(body);
    this.#warnSetAside(parsed.setAside, null);
    if (parsed.job === null) {
      throw new ProtocolError(
        `dashboard answered a malformed job at ${displayUrl(url)}: ${parsed.setAside[0]?.reason ?? "no details"}`,
      );
    }
    if (parsed.job.id !== jobId) {
      throw new ProtocolError(
        `dashboard answered job ${parsed.job.id} for job ${jobId} at ${displayUrl(url)}`,
      );
    }
    return parsed.job;
  }

  async getTask(jobId: number, taskId: string): Promise<Task> {
    const url = this.#routes.task(jobId, taskId);
    const body = await this.#getJson(url, `task ${taskId}`);
    const kind = kindOfConfig(body);
    if (kind === null) {
      throw new ProtocolError(
        `dashboard answered a config of no known task kind at ${displayUrl(url)}`,
      );
    }
    const check = checkTask(kind, taskId, body);
    if (!check.ok) {
      throw new ProtocolError(
        `dashboard answered a malformed ${kind} task at ${displayUrl(url)}: ${check.reason}`,
      );
    }
    return check.task;
  }

  async postStatus(jobId: number, taskId: string, update: StatusUpdate): Promise<void> {
    const url = this.#routes.task(jobId, taskId);
    const where = displayUrl(url);
    const what = `status ${update.status} of task ${taskId} (job ${jobId})`;
    if (update.labToken !== undefined && update.labToken.length > MAX_LAB_TOKEN_LENGTH) {
      throw new ProtocolError(
        `lab token for task ${taskId} is ${update.labToken.length} characters; the dashboard keeps at most ${MAX_LAB_TOKEN_LENGTH}`,
      );
    }
    const form = new URLSearchParams({ status: String(update.status) });
    if (update.message !== undefined) form.set("message", update.message);
    if (update.labToken !== undefined) form.set("lab_token", update.labToken);
    const body = form.toString();
    const startedAt = Date.now();
    let attempts = 0;
    let only500 = true;
    try {
      // Posting again is safe: the same fields set to the same values leave the task as one post
      // does (the dashboard may send its ready e-mail again, which it does on any post anyway).
      await retryTransient(
        async () => {
          attempts++;
          try {
            await this.#postOnce(url, body, update);
            only500 = false;
          } catch (error) {
            if (!(error instanceof ServerError500)) only500 = false;
            throw error;
          }
        },
        this.#postRetry,
        { logger: this.#logger, what: `posting ${what}` },
      );
    } catch (error) {
      if (error instanceof ServerError500 && only500) {
        throw new NotFoundError(
          `dashboard answered 500 to each of ${attempts} posts of ${what} at ${where}: what it answers for a task id it does not know`,
          { cause: error },
        );
      }
      if (!(error instanceof TransientError)) throw error;
      const seconds = Math.round((Date.now() - startedAt) / 1000);
      const message = `dashboard did not confirm ${what} after ${attempts} attempts in ${seconds} s at ${where}: ${errorMessage(error)}`;
      throw error instanceof OutcomeUnknownError
        ? new OutcomeUnknownError(message, { cause: error })
        : new TransientError(message, { cause: error });
    }
    this.#logger.debug({ jobId, taskId, status: update.status }, "task status posted");
  }

  /** One status post, judged; throws what retryTransient should try again as a TransientError. */
  async #postOnce(url: URL, body: string, update: StatusUpdate): Promise<void> {
    const where = displayUrl(url);
    const response = await this.#send(
      url,
      {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body,
        // A redirected POST becomes a GET, and may leave the dashboard: it is reported instead.
        redirect: "manual",
      },
      this.#timeoutMs,
      true,
    );
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new OutcomeUnknownError(
        `dashboard answer cut short at ${where}: ${describe(error, this.#timeoutMs)}`,
        { cause: error },
      );
    }
    if (response.status === 500) {
      throw new ServerError500(`dashboard answered 500 at ${where}`);
    }
    if (isTransientStatus(response.status)) {
      throw new OutcomeUnknownError(`dashboard answered ${response.status} at ${where}`);
    }
    this.#refuseNonJson(response, text, where);
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      // Garbled on the way back, after the dashboard may have saved the status.
      throw new OutcomeUnknownError(
        `dashboard answered a garbled body (${text.length} characters) at ${where}`,
      );
    }
    const meta = isObject(answer) && isObject(answer.meta) ? answer.meta : null;
    if (meta === null || !("status" in meta)) {
      throw new ProtocolError(`dashboard answered the status post without its meta at ${where}`);
    }
    // The dashboard echoes the field as posted (text), or the stored number when none was read.
    if (String(meta.status) !== String(update.status)) {
      throw new ProtocolError(
        `dashboard kept status ${JSON.stringify(meta.status)} where ${update.status} was posted at ${where}: it did not read the form`,
      );
    }
  }

  /**
   * A GET's JSON body, with the read retry. `unknownIdOf` names what a 500 would mean is unknown
   * (a job, a task); null on a listing, where a 500 is only a server error.
   */
  async #getJson(url: URL, unknownIdOf: string | null): Promise<unknown> {
    const where = displayUrl(url);
    let attempts = 0;
    let only500 = true;
    try {
      return await readWithRetry(
        async (timeoutMs) => {
          attempts++;
          try {
            const body = await this.#readOnce(url, timeoutMs, unknownIdOf !== null);
            only500 = false;
            return body;
          } catch (error) {
            if (!(error instanceof ServerError500)) only500 = false;
            throw error;
          }
        },
        {
          policy: this.#retry,
          requestTimeoutMs: this.#timeoutMs,
          onRetry: (error, attemptNumber) =>
            this.#logger.debug(
              { url: where, attemptNumber, err: error.message },
              "dashboard retry",
            ),
        },
      );
    } catch (error) {
      if (error instanceof ServerError500 && only500 && unknownIdOf !== null) {
        throw new NotFoundError(
          `dashboard answered 500 to each of ${attempts} reads of ${unknownIdOf} at ${where}: what it answers for an id it does not know`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  async #readOnce(url: URL, timeoutMs: number, idRoute: boolean): Promise<unknown> {
    const where = displayUrl(url);
    const response = await this.#send(url, { method: "GET" }, timeoutMs, false);
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new TransientError(
        `dashboard answer cut short at ${where}: ${describe(error, timeoutMs)}`,
        { cause: error },
      );
    }
    if (response.status === 500 && idRoute)
      throw new ServerError500(`dashboard answered 500 at ${where}`);
    if (isTransientStatus(response.status)) {
      throw new TransientError(`dashboard answered ${response.status} at ${where}`);
    }
    this.#refuseNonJson(response, text, where);
    try {
      return JSON.parse(text);
    } catch {
      const type = response.headers.get("content-type") ?? "no content type";
      throw new TransientError(
        `dashboard answered a garbled body (${type}, ${text.length} characters) at ${where}: cut short on the way?`,
      );
    }
  }

  /** Any answer but a 2xx JSON body becomes its (final) error. */
  #refuseNonJson(response: Response, text: string, where: string): void {
    const html = looksLikeHtml(response, text);
    if (response.status === 404) {
      throw new ConfigError(`dashboard answered 404 at ${where}: ${this.#urlHint()}`);
    }
    if (html) {
      const message = `dashboard answered an HTML page (${response.status}) where JSON was expected at ${where}: ${this.#urlHint()}`;
      throw response.ok ? new PageInsteadOfJsonError(message) : new ConfigError(message);
    }
    if (!response.ok) {
      throw new ProtocolError(`dashboard answered ${response.status} at ${where}`);
    }
  }

  #urlHint(): string {
    return (
      "is the dashboard URL right, and does it serve the jobs API (2018 and later)? Expected " +
      `api/labs/${this.lab}/jobs/… under the dashboard's root`
    );
  }

  /**
   * One request with the lab token, within `timeoutMs` (which also bounds reading the body). No
   * answer is a TransientError — an OutcomeUnknownError for a post that may have gone out — and a
   * 403 an AuthError; any other answer is the caller's to judge.
   */
  async #send(
    url: URL,
    init: RequestInit & { headers?: Record<string, string> },
    timeoutMs: number,
    write: boolean,
  ): Promise<Response> {
    const where = displayUrl(url);
    let response: Response;
    try {
      response = await fetch(url, {
        ...init,
        headers: {
          ...init.headers,
          "auth-token": this.#token.reveal(),
          Accept: "application/json",
        },
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const message = `dashboard unreachable at ${where}: ${describe(error, timeoutMs)}`;
      // A refused connection carried nothing; any other failure may have lost a post's answer.
      const refused = errorCode(error) === "ECONNREFUSED";
      throw write && !refused
        ? new OutcomeUnknownError(message, { cause: error })
        : new TransientError(message, { cause: error });
    }
    if (response.status === 401 || response.status === 403) {
      // Django's PermissionDenied page: HTML, nothing worth quoting.
      await response.body?.cancel().catch(() => undefined);
      throw new AuthError(
        `dashboard refused lab ${JSON.stringify(this.lab)} (${response.status}) at ${where}: a wrong lab token, or a lab the dashboard does not know`,
      );
    }
    return response;
  }

  #warnSetAside(setAside: readonly SetAside[], listing: JobListing | null): void {
    for (const entry of setAside) {
      this.#logger.warn(
        {
          listing,
          jobId: entry.jobId,
          kind: entry.kind,
          taskId: entry.taskId,
          reason: entry.reason,
        },
        entry.reason === "unknown task kind"
          ? "skipping dashboard task of a kind this lab does not know"
          : "skipping malformed dashboard job or task",
      );
    }
  }
}

function describe(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === "TimeoutError") {
    return `no answer within ${timeoutMs / 1000} s`;
  }
  const message = errorMessage(error);
  const cause = error instanceof Error ? error.cause : undefined;
  const code = errorCode(error);
  if (code !== null) return `${message} (${code})`;
  return cause instanceof Error ? `${message} (${cause.message})` : message;
}

/** undici reports "fetch failed" and keeps the useful part (ECONNREFUSED, …) in `cause`. */
function errorCode(error: unknown): string | null {
  const cause = error instanceof Error ? error.cause : undefined;
  const code = cause instanceof Error ? (cause as NodeJS.ErrnoException).code : undefined;
  return typeof code === "string" ? code : null;
}

function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** Django's and web servers' own pages are HTML; JSON never starts with "<". */
function looksLikeHtml(response: Response, text: string): boolean {
  return /\bhtml\b/i.test(response.headers.get("content-type") ?? "") || /^\s*</.test(text);
}
