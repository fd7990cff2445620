/**
 * userPassword values in the {SSHA} scheme (salted SHA-1, as slapd's password-hash default and
 * every OpenLDAP since 2.0 checks them), so that no VPN password is ever stored in clear. The
 * salt is fresh for every hash: two users with the same password get different values.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Secret } from "../../secret";

export const SSHA_PREFIX = "{SSHA}";
/** Bytes of random salt; RFC 2307-era servers take any length after the 20-byte digest. */
export const SSHA_SALT_BYTES = 16;
const SHA1_BYTES = 20;

function digest(password: string, salt: Buffer): Buffer {
  return createHash("sha1").update(password, "utf8").update(salt).digest();
}

/** `{SSHA}` + base64(SHA-1(password ‖ salt) ‖ salt). */
export function sshaHash(password: Secret, salt: Buffer = randomBytes(SSHA_SALT_BYTES)): string {
  if (salt.length < 8) throw new Error(`an {SSHA} salt needs 8 bytes or more, not ${salt.length}`);
  const hashed = Buffer.concat([digest(password.reveal(), salt), salt]);
  return `${SSHA_PREFIX}${hashed.toString("base64")}`;
}

/** Whether `stored` is an {SSHA} value of `password` (constant time in the digest comparison). */
export function sshaMatches(password: Secret, stored: string): boolean {
  if (!stored.startsWith(SSHA_PREFIX)) return false;
  const decoded = Buffer.from(stored.slice(SSHA_PREFIX.length), "base64");
  if (decoded.length <= SHA1_BYTES) return false;
  const salt = decoded.subarray(SHA1_BYTES);
  return timingSafeEqual(decoded.subarray(0, SHA1_BYTES), digest(password.reveal(), salt));
}
