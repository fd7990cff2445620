/**
 * Credentials at rest: between their making (a root password set on a host, a VPN password) and
 * their delivery to the user, they are stored sealed with the hand-over's sealing key, so the
 * store (and its backups) never holds them in clear. AES-256-GCM: a random 12-byte IV per seal,
 * and the tag makes any change to the text, or a wrong key, fail to open instead of yielding
 * garbage.
 *
 * Text form: `v1.<iv>.<tag>.<ciphertext>`, each part base64url without padding. The version is
 * also authenticated (as GCM's additional data), so a later format cannot be passed off as v1.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { decodeSealingKey } from "../config/handover";
import { ConfigError, LaasError } from "../errors";
import type { Secret } from "../secret";

/** Sealed credentials cannot be opened: malformed, altered, or sealed with another key. */
export class SealedCredentialsError extends LaasError {
  override name = "SealedCredentials";
}

const VERSION = "v1";
const CIPHER = "aes-256-gcm";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function sealCredentials(key: Secret, credentials: Record<string, string>): string {
  for (const [name, value] of Object.entries(credentials)) {
    if (typeof value !== "string") {
      throw new TypeError(`credential "${name}" must be a string to be sealed`);
    }
  }
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, keyBytes(key), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(VERSION));
  const ciphertext = Buffer.concat([
    cipher.update(JSON.stringify(credentials), "utf8"),
    cipher.final(),
  ]);
  return [VERSION, iv, cipher.getAuthTag(), ciphertext]
    .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
    .join(".");
}

export function openCredentials(key: Secret, sealed: string): Record<string, string> {
  const parts = sealed.trim().split(".");
  if (parts.length !== 4 || parts[0] !== VERSION) {
    throw new SealedCredentialsError(
      `sealed credentials are not in the ${VERSION} form (${VERSION}.<iv>.<tag>.<ciphertext>)`,
    );
  }
  const [, ivText = "", tagText = "", ciphertextText = ""] = parts;
  if (![ivText, tagText, ciphertextText].every((part) => BASE64URL.test(part))) {
    throw new SealedCredentialsError("sealed credentials hold characters outside base64url");
  }
  const iv = Buffer.from(ivText, "base64url");
  const tag = Buffer.from(tagText, "base64url");
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new SealedCredentialsError(
      `sealed credentials need a ${IV_BYTES}-byte IV and a ${TAG_BYTES}-byte tag`,
    );
  }
  const decipher = createDecipheriv(CIPHER, keyBytes(key), iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(VERSION));
  decipher.setAuthTag(tag);
  let plaintext: string;
  try {
    plaintext = Buffer.concat([
      decipher.update(Buffer.from(ciphertextText, "base64url")),
      decipher.final(),
    ]).toString("utf8");
  } catch {
    // GCM cannot tell the two apart, and OpenSSL's message says nothing more.
    throw new SealedCredentialsError(
      `sealed credentials cannot be opened with the sealing key (${key.source}): ` +
        "the key is not the one they were sealed with, or the text was altered",
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
