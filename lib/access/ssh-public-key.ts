/**
 * The SSH public key a user gives for their pod, checked before it goes anywhere near a host's
 * authorized_keys: exactly one OpenSSH public key line of a type current OpenSSH accepts, without
 * authorized_keys options (a `command="…"` or `from=` given by the user would be installed with
 * the key). The line handed on is re-built from the parts that were checked, never the raw text.
 *
 * Reasons for refusal are fixed sentences: they end up in messages to the user and in logs, and
 * never repeat what was given (someone may paste a private key).
 */
import { createPublicKey } from "node:crypto";
import ssh2 from "ssh2";
import { fingerprintSha256 } from "../adapters/ssh/host-key";

export type ParsedSshPublicKey =
  | {
      ok: true;
      /** `type base64 [comment]`, single spaces, nothing else. */
      line: string;
      type: string;
      /** SHA256:… as `ssh-keygen -l` prints it. */
      fingerprint: string;
      /** The comment (often user@host); "" when there is none. */
      comment: string;
    }
  | { ok: false; reason: string };

/** Longer than any real public key line (a 16384-bit RSA key is ~2.8 KB of base64). */
export const MAX_PUBLIC_KEY_BYTES = 16 * 1024;
const MIN_RSA_BITS = 2048;
/** OpenSSH refuses larger RSA moduli (SSH_RSA_MAXIMUM_MODULUS_SIZE). */
const MAX_RSA_BITS = 16384;

/** Curve name in the key blob, and the JWK curve Node checks the point on. */
const ECDSA_CURVES = {
  "ecdsa-sha2-nistp256": { name: "nistp256", jwk: "P-256", coordinateBytes: 32 },
  "ecdsa-sha2-nistp384": { name: "nistp384", jwk: "P-384", coordinateBytes: 48 },
  "ecdsa-sha2-nistp521": { name: "nistp521", jwk: "P-521", coordinateBytes: 66 },
  "sk-ecdsa-sha2-nistp256@openssh.com": { name: "nistp256", jwk: "P-256", coordinateBytes: 32 },
} as const;

export const ACCEPTED_KEY_TYPES: readonly string[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
  "ssh-rsa",
];
/** Keys of these types go through ssh2's parser too; ssh2 does not know the FIDO (sk-) types. */
const SSH2_TYPES = new Set(ACCEPTED_KEY_TYPES.filter((type) => !type.startsWith("sk-")));

/** Canonical base64 (OpenSSH writes it padded), checked again after decoding. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Fields of a key line are separated by blanks, as sshd reads authorized_keys. */
const BLANKS = /[ \t]+/;
/**
 * Characters refused in a comment: control characters (a newline would start a second
 * authorized_keys line), invisible formatting (bidi overrides can make a comment read as
 * something else), and the Unicode line and paragraph separators.
 */
const UNSAFE_IN_COMMENT = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

const refuse = (reason: string): ParsedSshPublicKey => ({ ok: false, reason });

/**
 * Accepts exactly one OpenSSH public key line; blanks and newlines around it are ignored, and
 * the blanks (spaces, tabs) between the comment's words become single spaces. Comments with any
 * other control or invisible formatting character are refused, not cleaned: a key whose comment
 * is not what its owner sees is not installed on their behalf.
 */
export function parseSshPublicKey(text: string): ParsedSshPublicKey {
  if (typeof text !== "string") return refuse("an SSH public key must be text");
  if (Buffer.byteLength(text, "utf8") > MAX_PUBLIC_KEY_BYTES) {
    return refuse(`too long for an SSH public key (over ${MAX_PUBLIC_KEY_BYTES / 1024} KiB)`);
  }
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|PuTTY-User-Key-File-/.test(text)) {
    return refuse("this is a private key: give the public key (the .pub file) instead");
  }
  const trimmed = text.trim();
  if (trimmed === "") return refuse("no SSH public key given");
  if (trimmed.startsWith("---- BEGIN SSH2 PUBLIC KEY")) {
    return refuse(
      "this is an RFC 4716 (SSH2) public key: give the OpenSSH form (ssh-keygen -i -f FILE)",
    );
  }
  if (/[\r\n]/.test(trimmed)) {
    return refuse("more than one line given: give exactly one SSH public key line");
  }

  const [type = "", base64 = "", ...rest] = trimmed.split(BLANKS);
  const comment = rest.join(" ");
  if (!ACCEPTED_KEY_TYPES.includes(type)) {
    return refuse(typeProblem(type, [base64, ...rest]));
  }
  if (base64 === "") return refuse("the key line has no key data after its type");
  if (!BASE64.test(base64)) return refuse("the key data is not base64");
  if (UNSAFE_IN_COMMENT.test(comment)) {
    return refuse("the key's comment contains control or invisible formatting characters");
  }

  const blob = Buffer.from(base64, "base64");
  const problem = blobProblem(type, blob);
  if (problem !== null) return refuse(problem);
  if (SSH2_TYPES.has(type)) {
    const parsed = ssh2.utils.parseKey(`${type} ${base64}`);
    if (parsed instanceof Error || parsed.type !== type) {
      return refuse("the key data is not a valid key of its type");
    }
  }

  return {
    ok: true,
    line: comment === "" ? `${type} ${base64}` : `${type} ${base64} ${comment}`,
    type,
    fingerprint: fingerprintSha256(blob),
    comment,
  };
}

/** Why a line that does not start with an accepted type is refused; `after`: its other words. */
function typeProblem(type: string, after: string[]): string {
  if (type === "ssh-dss") return "DSA keys are not accepted (OpenSSH no longer supports them)";
  if (type.includes("-cert-v01@openssh.com")) {
    return "certificates are not accepted: give the plain public key";
  }
  // An authorized_keys line: options first, the key type further on.
  if (after.some((word) => ACCEPTED_KEY_TYPES.includes(word) || word === "ssh-dss")) {
    return (
      "authorized_keys options (command=, from=, no-pty, …) are not accepted: " +
      "the line must start with the key type"
    );
  }
  return (
    "not an SSH public key of an accepted type (ssh-ed25519, ecdsa-sha2-nistp256/384/521, " +
    "sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, ssh-rsa)"
  );
}

/**
 * Reads the key blob field by field (RFC 4253 6.6, PROTOCOL.u2f for the sk- types): it must be
 * a key of the type the line names, with nothing left over, and a usable key. Null when it is.
 */
function blobProblem(type: string, blob: Buffer): string | null {
  const reader = new WireReader(blob);
  const malformed = "the key data is not a valid key of its type";
  if (reader.string()?.toString("latin1") !== type) {
    return "the key data is of another type than the line names";
  }
  switch (type) {
    case "ssh-ed25519":
    case "sk-ssh-ed25519@openssh.com": {
      const point = reader.string();
      if (point?.length !== 32) return malformed;
      break;
    }
    case "ssh-rsa": {
      const exponent = reader.string();
      const modulus = reader.string();
      if (!exponent || !modulus || !reader.atEnd()) return malformed;
      if (!rsaUsable(exponent, modulus)) return malformed;
      const bits = mpintBits(modulus);
      if (bits < MIN_RSA_BITS) {
        return `RSA keys must have at least ${MIN_RSA_BITS} bits (this one has ${bits})`;
      }
      if (bits > MAX_RSA_BITS) return `RSA keys over ${MAX_RSA_BITS} bits are not accepted`;
      return null;
    }
    default: {
      const curve = ECDSA_CURVES[type as keyof typeof ECDSA_CURVES];
      if (reader.string()?.toString("latin1") !== curve.name) return malformed;
      const point = reader.string();
      if (!point || !onCurve(point, curve.jwk, curve.coordinateBytes)) return malformed;
    }
  }
  if (type.startsWith("sk-")) {
    // The FIDO application the key was made for; OpenSSH's are "ssh:…".
    const application = reader.string();
    if (!application || application.length === 0) return malformed;
  }
  return reader.atEnd() ? null : malformed;
}

/** An uncompressed point (as OpenSSH writes it) that Node accepts as a key on the curve. */
function onCurve(point: Buffer, crv: string, coordinateBytes: number): boolean {
  if (point.length !== 1 + 2 * coordinateBytes || point[0] !== 0x04) return false;
  try {
    createPublicKey({
      key: {
        kty: "EC",
        crv,
        x: point.subarray(1, 1 + coordinateBytes).toString("base64url"),
        y: point.subarray(1 + coordinateBytes).toString("base64url"),
      },
      format: "jwk",
    });
    return true;
  } catch {
    return false;
  }
}

/** Positive mpints (RFC 4251 5: the high bit is the sign) that Node accepts as an RSA key. */
function rsaUsable(exponent: Buffer, modulus: Buffer): boolean {
  if ((exponent[0] ?? 0x80) & 0x80 || (modulus[0] ?? 0x80) & 0x80) return false;
  const unsigned = (mpint: Buffer) => {
    let at = 0;
    while (at < mpint.length - 1 && mpint[at] === 0) at++;
    return mpint.subarray(at).toString("base64url");
  };
  try {
    createPublicKey({
      key: { kty: "RSA", n: unsigned(modulus), e: unsigned(exponent) },
      format: "jwk",
    });
    return true;
  } catch {
    return false;
  }
}

/** Bits of a positive mpint (leading zero bytes ignored). */
function mpintBits(mpint: Buffer): number {
  let at = 0;
  while (at < mpint.length && mpint[at] === 0) at++;
  if (at === mpint.length) return 0;
  return (mpint.length - at - 1) * 8 + (mpint[at] ?? 0).toString(2).length;
}

/** SSH wire-format strings: a 4-byte big-endian length, then that many bytes. */
class WireReader {
  readonly #data: Buffer;
  #at = 0;

  constructor(data: Buffer) {
    this.#data = data;
  }

  string(): Buffer | null {
    if (this.#at + 4 > this.#data.length) return null;
    const length = this.#data.readUInt32BE(this.#at);
    const start = this.#at + 4;
    if (start + length > this.#data.length) return null;
    this.#at = start + length;
    return this.#data.subarray(start, this.#at);
  }

  atEnd(): boolean {
    return this.#at === this.#data.length;
  }
}
