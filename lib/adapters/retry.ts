/**
 * The bounded retry the lab-facing adapters share (SSH relay, LDAP, SMTP): an attempt that failed
 * with a TransientError is made again after a growing, jittered delay, at most `retries` times
 * and never started once `maxRetryMs` have gone by; any other error ends it at once. The
 * workflows' Retry comes on top of this for the steps; this one makes a short outage harmless
 * wherever the call comes from (a step, the watcher, the sweep, a CLI command). What is retried
 * must be safe to repeat: each adapter says why its attempts are.
 *
 * A retry of something that does not answer says what it waits for, why, and until when
 * (`waitingFor`): "waiting for the relay at 10.0.0.5:22 (connection refused); attempt 2 of 3,
 * none started after 23:41:10 UTC" — a command waiting on it is never silent — and the error it
 * ends with names it.
 */
import pRetry from "p-retry";
import { errorMessage, TransientError, UnreachableError } from "../errors";
import type { Logger } from "../log";
import { zonedTime } from "../time";

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
  /**
   * What the attempts wait for when it does not answer ("the relay at 10.0.0.5:22"): each retry
   * of an UnreachableError is then a warning saying so, and the last one's error names it.
   */
  waitingFor?: string;
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
  const { waitingFor } = context;
  const startedAt = Date.now();
  const attempts = policy.retries + 1;
  let made = 0;
  const counted = (attemptNumber: number) => {
    made = attemptNumber;
    return attempt(attemptNumber);
  };
  try {
    if (policy.retries <= 0) return await counted(1);
    return await pRetry(counted, {
      retries: policy.retries,
      minTimeout: policy.minDelayMs,
      maxTimeout: policy.maxDelayMs,
      factor: 2,
      randomize: true,
      maxRetryTime: policy.maxRetryMs,
      shouldRetry: ({ error }) => retryable(error),
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (!retryable(error) || retriesLeft === 0) return;
        if (waitingFor !== undefined && error instanceof UnreachableError) {
          const lastStart = zonedTime(new Date(startedAt + policy.maxRetryMs));
          context.logger.warn(
            { attempt: attemptNumber, retriesLeft, err: errorMessage(error) },
            `waiting for ${waitingFor} (${error.reason}); attempt ${attemptNumber + 1} of ` +
              `${attempts}, none started after ${lastStart}`,
          );
          return;
        }
        context.logger.warn(
          { attempt: attemptNumber, retriesLeft, err: errorMessage(error) },
          `${context.what} failed; trying again`,
        );
      },
    });
  } catch (error) {
    if (waitingFor === undefined || !(error instanceof UnreachableError)) throw error;
    // The error says whom it waited for, and for how long: not the step that waited.
    const tries = made === 1 ? "1 attempt" : `${made} attempts`;
    const from = zonedTime(new Date(startedAt));
    throw new UnreachableError(
      `${waitingFor} did not answer: ${error.reason} (${tries}, from ${from} to ${zonedTime(new Date())})`,
      error.reason,
      { cause: error },
    );
  }
}
