/**
 * Exit codes of `laas`: 0 done; 1 the operation failed (imaging failed, FOG refused…);
 * 2 bad usage or configuration (an unknown option, a host the store does not know…);
 * 3 refused to act (data would be lost without --force, a host held by a booking, a listener
 * running, nothing to stop…).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, refused: 3 } as const;

/** An expected refusal, reported without a stack trace. */
export class Refusal extends Error {
  override name = "Refusal";
}

/** A command given something it cannot act on (a host the store does not know, a bad --why). */
export class UsageError extends Error {
  override name = "UsageError";
}
