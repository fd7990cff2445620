/**
 * Credentials at rest: between their making (a root password set on a host, a VPN password) and
 * their delivery to the user, they are stored sealed with the hand-over's sealing key, so the
 * store (and its backups) never holds them in clear. AES-256-GCM: a random 12-byte IV per seal,
 * and the tag makes any change to the text, or a wrong key, fail to open instead of yielding
 * garbage.
 *
 * Sealed credentials are bound to their booking: the booking id is part of GCM's additional
 * authenticated data, so a text copied onto another booking (by anyone who can write the store)
 * does not open there — that booking's hand-over would otherwise mail one user's passwords to
 * another.
 *
 * Text form: `v2.<booking>.<iv>.<tag>.<ciphertext>`, each part base64url without padding;
 * `<booking>` is the booking id the text says it was sealed for, so that a text moved from
 * another booking is refused naming both. That label is only for the message: what opens the
 * text is the id of the booking it is read from, authenticated with the version as
 * `v2.booking.<id>`, so relabelling a moved text does not help.
 *
 * Texts of the earlier form `v1.<iv>.<tag>.<ciphertext>` were sealed without a booking and are
 * refused, not opened: nothing in them shows which booking they belong to, so accepting them
 * (even "once, to seal them again bound") would let a v1 text from any booking, or from a backup
 * of the store, be moved onto another and opened there. Such a text only lives from the making
 * of a booking's access to its hand-over, so only a booking provisioned or left undelivered
 * across the upgrade holds one; the message names what clears it (the booking's release).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { decodeSealingKey } from "../config/handover";
import { ConfigError, LaasError } from "../errors";
import type { Secret } from "../secret";

/**
 * Sealed credentials cannot be opened: malformed, altered, sealed with another key or for another
 * booking, or of the unbound v1 form.
 */
export class SealedCredentialsError extends LaasError {
  override name = "SealedCredentials";
}

const VERSION = "v2";
/** The earlier form, sealed without a booking: recognised to be refused with a clear message. */
const UNBOUND_VERSION = "v1";
const CIPHER = "aes-256-gcm";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** What GCM authenticates besides the ciphertext: the form's version and the booking. */
function additionalData(bookingId: string): Buffer {
  return Buffer.from(`${VERSION}.booking.${bookingId}`, "utf8");
}

/** An empty id would bind the text to nothing in particular: a caller's bug, said so. */
function requireBookingId(bookingId: string): void {
  if (typeof bookingId !== "string" || bookingId.length === 0) {
    throw new TypeError("sealed credentials need the id of the booking they belong to");
  }
}

/** Seals `credentials` for the booking `bookingId`: they open only when read from that booking. */
export function sealCredentials(
  key: Secret,
  bookingId: string,
  credentials: Record<string, string>,
): string {
  requireBookingId(bookingId);
  for (const [name, value] of Object.entries(credentials)) {
    if (typeof value !== "string") {
      throw new TypeError(`credential "${name}" must be a string to be sealed`);
    }
  }
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, keyBytes(key), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(additionalData(bookingId));
  const ciphertext = Buffer.concat([
    cipher.update(JSON.stringify(credentials), "utf8"),
    cipher.final(),
  ]);
  return [VERSION, Buffer.from(bookingId, "utf8"), iv, cipher.getAuthTag(), ciphertext]
    .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
    .join(".");
}

/** Opens the credentials sealed on the booking `bookingId`. */
export function openCredentials(
  key: Secret,
  bookingId: string,
  sealed: string,
): Record<string, string> {
  requireBookingId(bookingId);
  const parts = sealed.trim().split(".");
  if (parts[0] === UNBOUND_VERSION) {
    throw new SealedCredentialsError(
      `booking ${bookingId}: its sealed credentials are of the ${UNBOUND_VERSION} form, sealed ` +
        "before credentials were bound to their booking, and are not opened (nothing shows " +
        "they belong to this booking); releasing the booking drops them and takes its access " +
        "back — it ends on the dashboard, or `laas deploy --reset --host <its host>` — and a " +
        "new provision seals fresh ones",
    );
  }
  if (parts.length !== 5 || parts[0] !== VERSION) {
    throw new SealedCredentialsError(
      `booking ${bookingId}: sealed credentials are not in the ${VERSION} form ` +
        `(${VERSION}.<booking>.<iv>.<tag>.<ciphertext>)`,
    );
  }
  const [, labelText = "", ivText = "", tagText = "", ciphertextText = ""] = parts;
  if (![labelText, ivText, tagText, ciphertextText].every((part) => BASE64URL.test(part))) {
    throw new SealedCredentialsError(
      `booking ${bookingId}: sealed credentials hold characters outside base64url`,
    );
  }
  const label = Buffer.from(labelText, "base64url").toString("utf8");
  if (label !== bookingId) {
    // Not authenticated, but telling: the usual way here is a text copied from another booking.
    throw new SealedCredentialsError(
      `booking ${bookingId}: the sealed credentials on it say they were sealed for booking ` +
        `${JSON.stringify(label.slice(0, 64))}: sealed credentials open only on their own booking`,
    );
  }
  const iv = Buffer.from(ivText, "base64url");
  const tag = Buffer.from(tagText, "base64url");
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new SealedCredentialsError(
      `booking ${bookingId}: sealed credentials need a ${IV_BYTES}-byte IV and a ${TAG_BYTES}-byte tag`,
    );
  }
  const decipher = createDecipheriv(CIPHER, keyBytes(key), iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(additionalData(bookingId));
  decipher.setAuthTag(tag);
  let plaintext: string;
  try {
    plaintext = Buffer.concat([
      decipher.update(Buffer.from(ciphertextText, "base64url")),
      decipher.final(),
    ]).toString("utf8");
  } catch {
    // GCM cannot tell these apart, and OpenSSL's message says nothing more.
    throw new SealedCredentialsError(
      `booking ${bookingId}: sealed credentials cannot be opened with the sealing key ` +
        `(${key.source}): the key is not the one they were sealed with, they were sealed for ` +
        "another booking, or the text was altered",
    );
  }
  return credentialsFrom(plaintext);
}

function keyBytes(key: Secret): Buffer {
  const decoded = decodeSealingKey(key.reveal());
  if (typeof decoded === "string") {
    throw new ConfigError(`the sealing key (${key.source}) cannot be used: it ${decoded}`);
  }
  return decoded;
}

/** The authenticated plaintext is ours, so anything but a map of strings is a bug: say so. */
function credentialsFrom(plaintext: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(plaintext);
  } catch {
    parsed = null;
  }
  if (
    parsed === null ||
    typeof parsed !== "object" ||
    Array.isArray(parsed) ||
    !Object.values(parsed).every((value) => typeof value === "string")
  ) {
    throw new SealedCredentialsError("opened sealed credentials are not a map of strings");
  }
  return parsed as Record<string, string>;
}
