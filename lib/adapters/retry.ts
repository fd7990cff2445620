/**
 * The bounded retry the lab-facing adapters share (SSH relay, LDAP, SMTP): an attempt that failed
 * with a TransientError is made again after a growing, jittered delay, at most `retries` times
 * and never started once `maxRetryMs` have gone by; any other error ends it at once. The
 * workflows' Retry comes on top of this for the steps; this one makes a short outage harmless
 * wherever the call comes from (a step, the watcher, the sweep, a CLI command). What is retried
 * must be safe to repeat: each adapter says why its attempts are.
 */
import pRetry from "p-retry";
import { errorMessage, TransientError } from "../errors";
import type { Logger } from "../log";

export interface RetryPolicy {
  /** Attempts after the first one (0: none). */
  retries: number;
  /** Delay before the first retry; doubled after each, up to maxDelayMs. */
  minDelayMs: number;
  maxDelayMs: number;
  /** No retry is started once this many milliseconds went by since the first attempt. */
  maxRetryMs: number;
}

export const NO_RETRY: RetryPolicy = { retries: 0, minDelayMs: 0, maxDelayMs: 0, maxRetryMs: 0 };

export interface RetryContext {
  logger: Logger;
  /** What is attempted, for the log line of each retry ("LDAP add", "SSH login to …"). */
  what: string;
  /** Which failures are retried (default: TransientError). */
  retryable?: (error: unknown) => boolean;
}

/** Runs `attempt` (given its number, 1 first) until it succeeds, fails for good, or the policy ends. */
export async function retryTransient<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  context: RetryContext,
): Promise<T> {
  const retryable = context.retryable ?? ((error) => error instanceof TransientError);
  if (policy.retries <= 0) return attempt(1);
  return pRetry(attempt, {
    retries: policy.retries,
    minTimeout: policy.minDelayMs,
    maxTimeout: policy.maxDelayMs,
    factor: 2,
    randomize: true,
    maxRetryTime: policy.maxRetryMs,
    shouldRetry: ({ error }) => retryable(error),
    onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
      if (!retryable(error) || retriesLeft === 0) return;
      context.logger.warn(
        { attempt: attemptNumber, retriesLeft, err: errorMessage(error) },
        `${context.what} failed; trying again`,
      );
    },
  });
}
