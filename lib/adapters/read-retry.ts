/**
 * Reads from a remote API, tried again after a TransientError with backoff, within a bounded
 * time. The adapters (dashboard, FOG) read through this wherever they are called from — poll,
 * a workflow step, the watcher, a CLI command — so one dropped connection, one 502 or one cut-short
 * answer never becomes the caller's failure. Final errors (auth, configuration, an unknown object,
 * an answer of the wrong shape) are never tried again; a 200 HTML page is asked for again within
 * the same bounds, and is a ConfigError after them (PageInsteadOfJsonError).
 *
 * The whole read (attempts and waits) takes at most max(budget, one request timeout): the first
 * attempt always gets its full request timeout, later ones only what is left. With the defaults
 * (4 attempts, 20 s) a read fits in the shortest workflow step that makes one (30 s, the status
 * notes; CreateVpnUser has 60 s), and the step's own Retry handles what is left over.
 */
import pRetry from "p-retry";
import { ConfigError, TransientError } from "../errors";

/**
 * A ConfigError that the next attempt might not meet: an HTML page answered with 200 where JSON
 * was expected. Most often the URL leads to the wrong place, but a login page or a portal in
 * front of the server can come and go. A read asks again within its bounds, and throws this —
 * a ConfigError like any other, by name too — once they are spent; never tried again after that.
 */
export class PageInsteadOfJsonError extends ConfigError {}

export interface ReadRetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Wait before the second attempt, doubled before each next one. */
  firstDelayMs: number;
  /** Longest wait between two attempts. */
  maxDelayMs: number;
  /** No attempt starts once this much time has gone (unless one request timeout is longer). */
  budgetMs: number;
}

export const DEFAULT_READ_RETRY: ReadRetryPolicy = {
  attempts: 4,
  firstDelayMs: 500,
  maxDelayMs: 4_000,
  budgetMs: 20_000,
};

/** An attempt shorter than this is not worth starting: the last failure is reported instead. */
const MIN_ATTEMPT_MS = 1_000;

export interface ReadRetryOptions {
  policy: ReadRetryPolicy;
  /** Time allowed for one request, its body included. */
  requestTimeoutMs: number;
  /**
   * Told of each failure that will be tried again (for a log line), with when the read gives up
   * at the latest: no attempt starts after `lastStart`.
   */
  onRetry?: (
    error: TransientError | PageInsteadOfJsonError,
    attemptNumber: number,
    bounds: { attempts: number; lastStart: Date },
  ) => void;
}

/**
 * Runs `attempt` (given the time it may take) until it succeeds, throws something other than a
 * TransientError (or PageInsteadOfJsonError), or the attempts or the time are spent; then the
 * last error is thrown as it was.
 */
export async function readWithRetry<T>(
  attempt: (timeoutMs: number) => Promise<T>,
  options: ReadRetryOptions,
): Promise<T> {
  const { policy, requestTimeoutMs } = options;
  const started = performance.now();
  const totalMs = Math.max(policy.budgetMs, requestTimeoutMs);
  const left = () => totalMs - (performance.now() - started);
  const shortest = Math.min(MIN_ATTEMPT_MS, requestTimeoutMs);
  // The first attempt has its whole request timeout; later ones what is left, in whole
  // milliseconds (AbortSignal.timeout() takes nothing else).
  const timeoutFor = (attemptNumber: number) =>
    attemptNumber === 1 ? requestTimeoutMs : Math.floor(Math.min(requestTimeoutMs, left()));
  return pRetry((attemptNumber) => attempt(timeoutFor(attemptNumber)), {
    retries: Math.max(0, policy.attempts - 1),
    minTimeout: policy.firstDelayMs,
    maxTimeout: policy.maxDelayMs,
    factor: 2,
    shouldRetry: ({ error, attemptNumber }) => {
      if (!(error instanceof TransientError || error instanceof PageInsteadOfJsonError)) {
        return false;
      }
      // The wait p-retry is about to make (its formula), then an attempt worth making.
      const delay = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (attemptNumber - 1));
      if (left() - delay < shortest) return false;
      options.onRetry?.(error, attemptNumber, {
        attempts: policy.attempts,
        lastStart: new Date(Date.now() + left() - shortest),
      });
      return true;
    },
  });
}
