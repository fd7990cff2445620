/**
 * SSH host key fingerprints in the form OpenSSH prints them (`ssh-keygen -lf`, the
 * "ECDSA key fingerprint is SHA256:…" prompt): "SHA256:" followed by the unpadded base64 of the
 * SHA-256 digest of the key's wire-format blob. Config (`host_key`) and the store (a host's
 * recorded key) both hold this form, so an operator can paste what ssh showed them.
 */
import { createHash } from "node:crypto";
import ssh2 from "ssh2";

const PREFIX = "SHA256:";
/** 32 digest bytes are 43 base64 characters once the "=" padding is dropped. */
const FINGERPRINT_PATTERN = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** Fingerprint of a public key blob (the bytes ssh2 hands to its hostVerifier). */
export function fingerprintSha256(keyBlob: Buffer): string {
  const digest = createHash("sha256").update(keyBlob).digest("base64");
  return `${PREFIX}${digest.replace(/=+$/, "")}`;
}

/**
 * Fingerprint of a public key given as an OpenSSH line ("ssh-ed25519 AAAA… comment") or as the
 * public half of a private key. Throws when the text is not a key ssh2 can read.
 */
export function fingerprintOfPublicKey(key: string): string {
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) throw new Error(`not an SSH public key: ${parsed.message}`);
  return fingerprintSha256(parsed.getPublicSSH());
}

/**
 * Canonical form of a configured or recorded fingerprint: surrounding blanks and base64 "="
 * padding removed, the "sha256:" prefix spelled as OpenSSH spells it. Answers null when the
 * value is not a SHA-256 fingerprint at all (MD5 "aa:bb:…" forms, a whole public key, typos).
 */
export function normalizeFingerprint(value: string): string | null {
  const trimmed = value.trim().replace(/=+$/, "");
  const prefixed = trimmed.toUpperCase().startsWith(PREFIX)
    ? `${PREFIX}${trimmed.slice(PREFIX.length)}`
    : trimmed;
  return FINGERPRINT_PATTERN.test(prefixed) ? prefixed : null;
}

export function isSha256Fingerprint(value: string): boolean {
  return normalizeFingerprint(value) !== null;
}

/** True when both values name the same key; an unreadable value never matches anything. */
export function sameFingerprint(a: string, b: string): boolean {
  const left = normalizeFingerprint(a);
  return left !== null && left === normalizeFingerprint(b);
}
