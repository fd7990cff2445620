/**
 * Errors that cross a workflow step boundary. Step Functions matches Retry and Catch on the
 * error's name, so each class sets a stable `name` that the ASL files refer to.
 */
export class LaasError extends Error {
  override name = "LaasError";
}

/** A configuration file is missing, unreadable or has a wrong or missing field. */
export class ConfigError extends LaasError {
  override name = "ConfigError";
}

/** A remote service refused our credentials (FOG 401/403, dashboard 401/403). Never retried. */
export class AuthError extends LaasError {
  override name = "AuthError";
}

/** Something that may succeed if tried again: network errors, 5xx, throttling. Retried. */
export class TransientError extends LaasError {
  override name = "TransientError";
}

/**
 * A request went out and its answer was lost: the connection dropped, or went silent, before the
 * server said how it ended, so it may have been carried out. It keeps TransientError's name, which
 * the workflows' Retry matches: repeating is what a lost answer calls for, once whoever repeats
 * has looked whether the first attempt took effect (steps do, by their records; adapters that
 * repeat a write themselves say how they look). Code that must not repeat blindly tests for
 * this class (instanceof), not for the name.
 */
export class OutcomeUnknownError extends TransientError {}

/**
 * An endpoint did not answer (refused, reset, timed out), with the reason in a few words
 * ("connection refused") besides the whole message: what a wait for it tells while it tries
 * again (lib/adapters/retry.ts). It keeps TransientError's name.
 */
export class UnreachableError extends TransientError {
  readonly reason: string;

  constructor(message: string, reason: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** Why an endpoint did not answer: in a few words for an UnreachableError, else its message. */
export function unreachableReason(error: unknown): string {
  return error instanceof UnreachableError ? error.reason : errorMessage(error);
}

/** A thing the lab was asked about does not exist (FOG host, image, inventory entry). */
export class NotFoundError extends LaasError {
  override name = "NotFoundError";
}

/** A `.catch` for a write whose item may be gone (a host forgotten): that is no failure. */
export function ignoreNotFound(error: unknown): void {
  if (error instanceof NotFoundError) return;
  throw error;
}

/** The host a booking needs is held by another booking; the caller may try later. */
export class HostBusyError extends LaasError {
  override name = "HostBusy";
}

/** A conditional write lost: the item was not in the state the caller expected. */
export class ConflictError extends LaasError {
  override name = "Conflict";
}

/** Imaging was cancelled, failed or ran past its deadline. */
export class ImagingError extends LaasError {
  override name = "ImagingFailed";
}

/** A remote API answered something this client does not understand. */
export class ProtocolError extends LaasError {
  override name = "ProtocolError";
}

/** The run was superseded (booking released, cancelled or failed meanwhile): stop quietly. */
export class SupersededError extends LaasError {
  override name = "Superseded";
}

/** The host did not come up (no address, no SSH) by its boot deadline, or has no known address. */
export class HostUnreachableError extends LaasError {
  override name = "HostUnreachable";
}

/** An address outside the lab's subnets (`lab_subnets`), or not an IPv4 address. Not retried. */
export class AddressOutsideLabError extends LaasError {
  override name = "AddressOutsideLab";
}

/**
 * The machine answering at a host's address could not be shown to be the booked host (its MAC in
 * the relay's neighbour table is not FOG's, or no proof is configured). Nothing secret went to it.
 */
export class HostIdentityError extends LaasError {
  override name = "HostIdentity";
}

/** The installer ended with a failure, or ran past its deadline. */
export class InstallerFailedError extends LaasError {
  override name = "InstallerFailed";
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A remote command exited with a code it should not have. The message holds the command (as
 * displayed), the exit code and the tail of its stderr.
 */
export class CommandFailedError extends LaasError {
  override name = "CommandFailed";
}
