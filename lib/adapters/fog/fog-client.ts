/**
 * The imager port over FOG 1.5's REST API, as FOG really answers it: find a host, set
 * its image, create a deploy task, follow it in task/current, cancel it.
 */
import pRetry from "p-retry";
import type { FogConfig } from "../../config/types";
import {
  ConfigError,
  ImagingError,
  NotFoundError,
  ProtocolError,
  TransientError,
} from "../../errors";
import type { Logger } from "../../log";
import type { Imager, ImagerHost, ImagingProgress } from "../../ports/imager";
import {
  FogHttp,
  type FogMethod,
  type FogResponse,
  failure,
  fogErrorMessage,
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
  /** Retries of an idempotent request after a TransientError (default 3). */
  retries?: number;
  /** First delay between two attempts, doubled each time (default 500 ms). */
  retryMinDelayMs?: number;
  /** Longest delay between two attempts (default 4000 ms). */
  retryMaxDelayMs?: number;
  /** fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

/** FOG's task type for a plain deploy (download the host's image to its disk). */
const DEPLOY_TASK_TYPE = 1;
const ALREADY_IN_TASK = /already a member of an active task/i;

export class FogClient implements Imager {
  readonly #http: FogHttp;
  readonly #logger: Logger;
  readonly #retry: { retries: number; minTimeout: number; maxTimeout: number };

  constructor(config: FogClientConfig, logger: Logger, options: FogClientOptions = {}) {
    this.#logger = logger;
    this.#http = new FogHttp(
      {
        server: config.server,
        apiKey: config.apiKey,
        userKey: config.userKey,
        timeoutMs: config.requestTimeoutSeconds * 1000,
        fetch: options.fetch ?? globalThis.fetch,
      },
      logger,
    );
    this.#retry = {
      retries: options.retries ?? 3,
      minTimeout: options.retryMinDelayMs ?? 500,
      maxTimeout: options.retryMaxDelayMs ?? 4000,
    };
  }

  /** Checks that FOG's web root answers (`system/status` needs no token, so this is reachability). */
  async ping(): Promise<void> {
    const response = await this.#request("GET", "system/status");
    if (response.body.trim() !== "success") {
      throw new ProtocolError(
        `FOG answered ${JSON.stringify(response.body.slice(0, 40))} to GET ${response.url}`,
      );
    }
  }

  async listHosts(): Promise<ImagerHost[]> {
    const response = await this.#request("GET", "host");
    return parseBody(response, hostListSchema).hosts.map(toImagerHost);
  }

  async findHost(name: string): Promise<ImagerHost> {
    checkHostName(name);
    const response = await this.#request("GET", `host/search/${encodeURIComponent(name)}`);
    const { hosts } = parseBody(response, hostListSchema);
    // FOG's search is a substring match ("pod1" also finds "pod10"): keep the exact name.
    const exact = hosts.filter((host) => host.name === name);
    const [host] = exact;
    if (!host) throw new NotFoundError(`FOG has no host named "${name}"`);
    if (exact.length > 1) {
      throw new ProtocolError(`FOG answered ${exact.length} hosts named "${name}"`);
    }
    return toImagerHost(host);
  }

  async deploy(hostId: string, imageId: number, taskName: string): Promise<void> {
    const id = hostIdOf(hostId);
    if (!Number.isSafeInteger(imageId) || imageId <= 0) {
      throw new ConfigError(`FOG image id must be a positive integer, not ${imageId}`);
    }
    await this.#setImage(id, imageId);

    const first = await this.#createDeployTask(id, taskName);
    if (first === "created") return;
    this.#logger.warn(
      { hostId: id, reason: first.refused },
      "FOG host already in an active task; cancelling it and creating the deploy again",
    );
    await this.cancel(id);
    const second = await this.#createDeployTask(id, taskName);
    if (second === "created") return;
    throw new ImagingError(
      `FOG still refuses a deploy task for host ${id} after cancelling its active task: ${second.refused}`,
    );
  }

  async activeTasks(): Promise<ImagingProgress[]> {
    const response = await this.#request("GET", "task/current");
    const { tasks } = parseBody(response, taskListSchema);
    // FOG keeps one active task per host; should two show up, the newest is the one we made.
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
    await this.#request("DELETE", `host/${id}/cancel`);
  }

  async #setImage(id: string, imageId: number): Promise<void> {
    const response = await this.#request("PUT", `host/${id}/edit`, {
      body: { imageID: imageId },
      refusalStatuses: [500],
    });
    if (!isSuccess(response)) {
      throw new ImagingError(
        `FOG refused to set image ${imageId} on host ${id}: ${fogErrorMessage(response)}`,
      );
    }
    const host = parseBody(response, fogHostSchema);
    const kept = canonicalId(host.imageID);
    if (kept !== String(imageId)) {
      throw new ImagingError(
        `FOG did not keep image ${imageId} on host ${id} (it reports ${JSON.stringify(host.imageID)})`,
      );
    }
  }

  /**
   * POSTs the deploy task once, without retrying: a request whose answer was lost may have
   * created the task, and a blind second POST would then be refused as "already a member".
   */
  async #createDeployTask(id: string, taskName: string): Promise<"created" | { refused: string }> {
    const response = await this.#request("POST", `host/${id}/task`, {
      body: { taskTypeID: DEPLOY_TASK_TYPE, taskName },
      refusalStatuses: [500],
      retry: false,
    });
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
    if (ALREADY_IN_TASK.test(message)) return { refused: message };
    throw new ImagingError(`FOG refused the deploy task for host ${id}: ${message}`);
  }

  /**
   * Sends a request, retrying TransientErrors when the request is idempotent (GET, PUT, DELETE).
   * Statuses listed in refusalStatuses are handed back when FOG explained them with an
   * `{"error"}` body; every other non-2xx status becomes the matching error.
   */
  async #request(
    method: FogMethod,
    route: string,
    options: { body?: unknown; refusalStatuses?: number[]; retry?: boolean } = {},
  ): Promise<FogResponse> {
    const attempt = async (): Promise<FogResponse> => {
      const response = await this.#http.send(method, route, options.body);
      if (isSuccess(response)) return response;
      const explained =
        options.refusalStatuses?.includes(response.status) && fogErrorMessage(response) !== null;
      if (explained) return response;
      throw failure(response);
    };
    if (options.retry === false || this.#retry.retries === 0) return attempt();
    return pRetry(attempt, {
      retries: this.#retry.retries,
      minTimeout: this.#retry.minTimeout,
      maxTimeout: this.#retry.maxTimeout,
      shouldRetry: ({ error }) => error instanceof TransientError,
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (!(error instanceof TransientError) || retriesLeft === 0) return;
        this.#logger.debug({ method, route, attemptNumber, error: error.message }, "fog retry");
      },
    });
  }
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
