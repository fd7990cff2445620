/**
 * The imager port over FOG 1.5's REST API, as FOG really answers it: find a host, set
 * its image, create a deploy task, follow it in task/current, cancel it.
 *
 * Every read, and every write that can be repeated as it is (setting the image, cancelling),
 * is tried again after a TransientError with backoff, within a bounded time (read-retry.ts). The
 * one write that cannot, creating the deploy task, is looked at before it is repeated.
 */
import { AbortError } from "p-retry";
import type { FogConfig } from "../../config/types";
import {
  ConfigError,
  ImagingError,
  NotFoundError,
  ProtocolError,
  TransientError,
  unreachableReason,
} from "../../errors";
import type { Logger } from "../../log";
import type { DeployOptions, Imager, ImagerHost, ImagingProgress } from "../../ports/imager";
import { zonedTime } from "../../time";
import {
  DEFAULT_READ_RETRY,
  PageInsteadOfJsonError,
  type ReadRetryPolicy,
  readWithRetry,
} from "../read-retry";
import {
  FogHttp,
  type FogMethod,
  type FogResponse,
  failure,
  fogErrorMessage,
  htmlAnswer,
  isHtml,
  isSuccess,
  parseBody,
} from "./fog-http";
import {
  canonicalId,
  FOG_HOST_NAME,
  fogHostSchema,
  hostListSchema,
  isActiveTask,
  taskListSchema,
  toImagerHost,
  toImagingProgress,
} from "./fog-schema";

export type FogClientConfig = Pick<
  FogConfig,
  "server" | "apiKey" | "userKey" | "requestTimeoutSeconds"
>;

export interface FogClientOptions {
  /** Retries of an idempotent request after a TransientError (default 3: four attempts). */
  retries?: number;
  /** First delay between two attempts, doubled each time (default 500 ms). */
  retryMinDelayMs?: number;
  /** Longest delay between two attempts (default 4000 ms). */
  retryMaxDelayMs?: number;
  /** No attempt starts after this long, unless one request timeout is longer (default 20 s). */
  retryBudgetMs?: number;
  /** fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

/** FOG's task type for a plain deploy (download the host's image to its disk). */
const DEPLOY_TASK_TYPE = 1;
const ALREADY_IN_TASK = /already a member of an active task/i;

export class FogClient implements Imager {
  readonly #http: FogHttp;
  readonly #logger: Logger;
  /** FOG's address, as the config gives it (no credential is part of it). */
  readonly #server: string;
  readonly #retry: ReadRetryPolicy;
  readonly #timeoutMs: number;

  constructor(config: FogClientConfig, logger: Logger, options: FogClientOptions = {}) {
    this.#logger = logger;
    const server = new URL(config.server);
    server.username = "";
    server.password = "";
    this.#server = server.href;
    this.#timeoutMs = config.requestTimeoutSeconds * 1000;
    this.#http = new FogHttp(
      {
        server: config.server,
        apiKey: config.apiKey,
        userKey: config.userKey,
        timeoutMs: this.#timeoutMs,
        fetch: options.fetch ?? globalThis.fetch,
      },
      logger,
    );
    this.#retry = {
      attempts: (options.retries ?? DEFAULT_READ_RETRY.attempts - 1) + 1,
      firstDelayMs: options.retryMinDelayMs ?? DEFAULT_READ_RETRY.firstDelayMs,
      maxDelayMs: options.retryMaxDelayMs ?? DEFAULT_READ_RETRY.maxDelayMs,
      budgetMs: options.retryBudgetMs ?? DEFAULT_READ_RETRY.budgetMs,
    };
  }

  /** Checks that FOG's web root answers (`system/status` needs no token, so this is reachability). */
  async ping(): Promise<void> {
    await this.#call("GET", "system/status", {}, (response) => {
      if (response.body.trim() === "success") return;
      if (isHtml(response)) throw htmlAnswer(response);
      throw new ProtocolError(
        `FOG answered ${JSON.stringify(response.body.slice(0, 40))} to GET ${response.url}`,
      );
    });
  }

  async listHosts(): Promise<ImagerHost[]> {
    return this.#call("GET", "host", {}, (response) =>
      parseBody(response, hostListSchema).hosts.map(toImagerHost),
    );
  }

  /**
   * The host of that name, compared without regard to case as FOG does (its search, and its
   * refusal of a new name that differs from another only by case): inventory `pod-caps` is
   * FOG's `Pod-Caps`.
   */
  async findHost(name: string): Promise<ImagerHost> {
    checkHostName(name);
    const hosts = await this.#call(
      "GET",
      `host/search/${encodeURIComponent(name)}`,
      {},
      (response) => parseBody(response, hostListSchema).hosts,
    );
    // FOG's search is a substring match ("pod1" also finds "pod10"): keep the whole name.
    const wanted = name.toLowerCase();
    const same = hosts.filter((host) => host.name.toLowerCase() === wanted);
    const [host] = same;
    if (!host) throw new NotFoundError(`FOG has no host named "${name}"`);
    if (same.length > 1) {
      // FOG's duplicate check would not have let them in; which one the inventory means is not
      // for LaaS to guess.
      const listed = same
        .map((h) => `${JSON.stringify(h.name)} (id ${canonicalId(h.id) ?? h.id})`)
        .join(" and ");
      const how = same.every((h) => h.name === host.name)
        ? "the same name"
        : "names that differ only by case";
      throw new ConfigError(
        `FOG holds ${same.length} hosts with ${how} as "${name}": ${listed}; FOG takes them for one name, so rename or remove all but one in FOG`,
      );
    }
    return toImagerHost(host);
  }

  async deploy(
    hostId: string,
    imageId: number,
    taskName: string,
    options: DeployOptions = {},
  ): Promise<void> {
    const id = hostIdOf(hostId);
    if (!Number.isSafeInteger(imageId) || imageId <= 0) {
      throw new ConfigError(`FOG image id must be a positive integer, not ${imageId}`);
    }
    await this.#setImage(id, imageId);

    const body = deployTaskBody(taskName, options);
    const first = await this.#createDeployTask(id, taskName, body);
    if (first === "created") return;
    this.#logger.warn(
      { hostId: id, reason: first.refused },
      "FOG host already in an active task; cancelling it and creating the deploy again",
    );
    await this.cancel(id);
    const second = await this.#createDeployTask(id, taskName, body);
    if (second === "created") return;
    throw new ImagingError(
      `FOG still refuses a deploy task for host ${id} after cancelling its active task: ${second.refused}`,
    );
  }

  async activeTasks(): Promise<ImagingProgress[]> {
    const tasks = await this.#call(
      "GET",
      "task/current",
      {},
      (response) => parseBody(response, taskListSchema).tasks,
    );
    // FOG keeps one active task per host; should two show up, the newest is the one we made.
    // Ids are compared in canonical form: FOG may send a host's id as "003" in one place and
    // "3" in another.
    const newest = new Map<string, (typeof tasks)[number]>();
    for (const task of tasks) {
      if (!isActiveTask(task)) continue;
      const host = canonicalId(task.hostID) ?? task.hostID;
      const seen = newest.get(host);
      if (!seen || Number(task.id) > Number(seen.id)) newest.set(host, task);
    }
    return [...newest.values()].map(toImagingProgress);
  }

  async progress(hostId: string): Promise<ImagingProgress | null> {
    const id = hostIdOf(hostId);
    return (await this.activeTasks()).find((task) => task.hostId === id) ?? null;
  }

  async cancel(hostId: string): Promise<void> {
    const id = hostIdOf(hostId);
    // Repeatable as it is: cancelling a host without an active task is a no-op in FOG.
    await this.#call("DELETE", `host/${id}/cancel`, {}, () => undefined);
  }

  async #setImage(id: string, imageId: number): Promise<void> {
    // Repeatable as it is: setting the same image twice leaves the host as once.
    const host = await this.#call(
      "PUT",
      `host/${id}/edit`,
      { body: { imageID: imageId }, refusalStatuses: [500] },
      (response) => {
        if (!isSuccess(response)) {
          throw new ImagingError(
            `FOG refused to set image ${imageId} on host ${id}: ${fogErrorMessage(response)}`,
          );
        }
        return parseBody(response, fogHostSchema);
      },
    );
    const kept = canonicalId(host.imageID);
    if (kept !== String(imageId)) {
      throw new ImagingError(
        `FOG did not keep image ${imageId} on host ${id} (it reports ${JSON.stringify(host.imageID)})`,
      );
    }
  }

  /**
   * POSTs the deploy task. The POST is never repeated blindly: when its answer was lost (no
   * answer, a 5xx without FOG's explanation), FOG may have made the task, and a second POST would
   * be refused as "already a member" — and that refusal leads to cancelling the task we made. So
   * the host's active task is looked at first: one under our name is ours, adopted; none means
   * the POST did not take, and it is sent again (within the same bounded attempts as a read).
   * When the look itself fails nothing more is sent: the caller recorded its intent before
   * calling, and looks again when it is retried (lib/lifecycle/imaging.ts).
   */
  async #createDeployTask(
    id: string,
    taskName: string,
    body: DeployTaskBody,
  ): Promise<"created" | { refused: string }> {
    return readWithRetry(
      async (timeoutMs) => {
        let response: FogResponse;
        try {
          response = await this.#send(
            "POST",
            `host/${id}/task`,
            { body, refusalStatuses: [500] },
            timeoutMs,
          );
        } catch (error) {
          // A page answered instead of FOG's (a portal passing by) leaves it as unknown whether
          // FOG made the task as a lost answer does.
          const unknown =
            error instanceof TransientError || error instanceof PageInsteadOfJsonError;
          if (!unknown) throw error;
          if (await this.#hasOurTask(id, taskName, error)) return "created";
          throw error;
        }
        if (isSuccess(response)) {
          // FOG answers the literal body `null`; any other 2xx still means the task exists.
          if (response.body.trim() !== "null") {
            this.#logger.debug(
              { hostId: id },
              "FOG answered a body other than null to a task creation",
            );
          }
          return "created";
        }
        const message = fogErrorMessage(response) ?? "";
        if (!ALREADY_IN_TASK.test(message)) {
          throw new ImagingError(`FOG refused the deploy task for host ${id}: ${message}`);
        }
        return { refused: message };
      },
      {
        policy: this.#retry,
        requestTimeoutMs: this.#timeoutMs,
        onRetry: (error, attemptNumber) =>
          this.#logger.warn(
            { hostId: id, attemptNumber, err: error.message },
            "FOG made no deploy task for a creation whose answer was lost; asking again",
          ),
      },
    );
  }

  /**
   * Whether the host's active task is the one named `taskName`. When FOG cannot be asked, stops
   * the retrying of `lost` (an AbortError hands it on unchanged, its message extended).
   */
  async #hasOurTask(id: string, taskName: string, lost: Error): Promise<boolean> {
    let active: ImagingProgress | null;
    try {
      active = await this.progress(id);
    } catch (error) {
      // A final error (refused tokens…) is thrown as it is; it is not tried again anyway.
      if (!(error instanceof TransientError)) throw error;
      throw new AbortError(
        new TransientError(
          `${lost.message}; whether FOG made the deploy task for host ${id} could not be seen: ${error.message}`,
          { cause: error },
        ),
      );
    }
    if (active?.taskName !== taskName) return false;
    this.#logger.info(
      { hostId: id, taskId: active.taskId },
      "FOG made the deploy task whose answer was lost: adopted",
    );
    return true;
  }

  /**
   * A request and its reading, tried again (read-retry.ts) while either fails with a
   * TransientError. `read` runs within the attempt, so a garbled body is asked for again too.
   * Only for requests that may be repeated as they are: GET, PUT, DELETE.
   */
  async #call<T>(
    method: FogMethod,
    route: string,
    options: { body?: unknown; refusalStatuses?: number[] },
    read: (response: FogResponse) => T,
  ): Promise<T> {
    return readWithRetry(
      async (timeoutMs) => read(await this.#send(method, route, options, timeoutMs)),
      {
        policy: this.#retry,
        requestTimeoutMs: this.#timeoutMs,
        // Said at warning level: a command waiting on FOG is never silent about why.
        onRetry: (error, attemptNumber, { attempts, lastStart }) =>
          this.#logger.warn(
            { method, route, attemptNumber, err: error.message },
            `waiting for FOG at ${this.#server} (${unreachableReason(error)}); attempt ` +
              `${attemptNumber + 1} of ${attempts}, none started after ${zonedTime(lastStart)}`,
          ),
      },
    );
  }

  /**
   * One request. Statuses listed in refusalStatuses are handed back when FOG explained them with
   * an `{"error"}` body; every other non-2xx status becomes the matching error, and so does an
   * HTML page (FOG's API never answers one).
   */
  async #send(
    method: FogMethod,
    route: string,
    options: { body?: unknown; refusalStatuses?: number[] },
    timeoutMs: number,
  ): Promise<FogResponse> {
    const response = await this.#http.send(method, route, options.body, timeoutMs);
    if (isSuccess(response)) {
      if (isHtml(response)) throw htmlAnswer(response);
      return response;
    }
    const explained =
      options.refusalStatuses?.includes(response.status) && fogErrorMessage(response) !== null;
    if (explained) return response;
    throw failure(response);
  }
}

interface DeployTaskBody {
  taskTypeID: number;
  taskName: string;
  shutdown?: true;
}

/** The task body: `shutdown` only when asked for, so that without it FOG gets what it always did. */
function deployTaskBody(taskName: string, options: DeployOptions): DeployTaskBody {
  const body: DeployTaskBody = { taskTypeID: DEPLOY_TASK_TYPE, taskName };
  if (options.shutdown === true) body.shutdown = true;
  return body;
}

/** Refuses names FOG 1.5 cannot address: it would answer 404 for them, which misleads. */
function checkHostName(name: string): void {
  if (!FOG_HOST_NAME.test(name) || name === "." || name === "..") {
    const why = name.length > 15 ? `longer than 15 characters (${name.length})` : "not allowed";
    throw new ConfigError(
      `FOG host name "${name}" is ${why}: FOG 1.5 accepts 1–15 letters, digits and _!@#$%^()-'{}.~`,
    );
  }
}

/** A host id as a canonical positive integer; anything else could never name a FOG host. */
function hostIdOf(hostId: string): string {
  const id = canonicalId(hostId);
  if (id === null) throw new NotFoundError(`"${hostId}" is not a FOG host id`);
  return id;
}
