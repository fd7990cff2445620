/**
 * The hand-over's credential helpers on their own: generated passwords, credentials sealed at
 * rest, and the check of a user's SSH public key. Key types, fingerprints and malformed keys are
 * measured against what OpenSSH's ssh-keygen makes and prints, not against the code under test.
 */
import { execFile } from "node:child_process";
import { createCipheriv, createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  generatePassword,
  hasEveryClass,
  PASSWORD_ALPHABET,
  PASSWORD_CLASSES,
} from "../lib/access/passwords";
import { openCredentials, SealedCredentialsError, sealCredentials } from "../lib/access/sealed";
import { MAX_PUBLIC_KEY_BYTES, parseSshPublicKey } from "../lib/access/ssh-public-key";
import { ConfigError } from "../lib/errors";
import { Secret } from "../lib/secret";
import { ensureOpenSshServer } from "../sim/sshd";

const run = promisify(execFile);

describe("generatePassword", () => {
  it("makes 20 characters by default, as a Secret that prints as [secret]", () => {
    const password = generatePassword();
    expect(password).toBeInstanceOf(Secret);
    expect(password.reveal()).toHaveLength(20);
    expect(String(password)).toBe("[secret]");
    expect(JSON.stringify({ password })).toBe('{"password":"[secret]"}');
  });

  it("uses no look-alike characters, only URL-safe symbols, and every class", () => {
    expect(PASSWORD_ALPHABET).not.toMatch(/[0O1lIo]/);
    for (let i = 0; i < 1000; i++) {
      const value = generatePassword().reveal();
      expect(value).toMatch(/^[A-Za-z0-9][A-Za-z0-9._~-]{18}[A-Za-z0-9]$/);
      expect(value).not.toMatch(/[0O1lIo]/);
      // Unreserved in RFC 3986: no URL or form encoding changes them.
      expect(encodeURIComponent(value)).toBe(value);
      for (const chars of PASSWORD_CLASSES) {
        expect([...value].some((c) => chars.includes(c))).toBe(true);
      }
    }
  });

  it("draws 1000 distinct passwords, using the whole alphabet about evenly", () => {
    const drawn = Array.from({ length: 1000 }, () => generatePassword().reveal());
    expect(new Set(drawn).size).toBe(1000);
    const counts = new Map<string, number>();
    for (const value of drawn) for (const c of value) counts.set(c, (counts.get(c) ?? 0) + 1);
    // 20,000 characters over 60: about 333 each (symbols less, never first or last).
    expect([...counts.keys()].sort().join("")).toBe([...PASSWORD_ALPHABET].sort().join(""));
    for (const count of counts.values()) expect(count).toBeGreaterThan(150);
    for (const count of counts.values()) expect(count).toBeLessThan(550);
  });

  it("honours the length asked for and refuses lengths too short to be safe", () => {
    expect(generatePassword(8).reveal()).toHaveLength(8);
    expect(generatePassword(256).reveal()).toHaveLength(256);
    expect(hasEveryClass(generatePassword(8).reveal())).toBe(true);
    for (const length of [0, 7, 257, 12.5, Number.NaN]) {
      expect(() => generatePassword(length)).toThrow(RangeError);
    }
  });
});

describe("sealCredentials / openCredentials", () => {
  const keyBytes = randomBytes(32);
  const base64Key = new Secret(keyBytes.toString("base64"), "/etc/laas/sealing_key");
  const hexKey = new Secret(keyBytes.toString("hex"), "inline");
  const otherKey = new Secret(randomBytes(32).toString("base64"), "/etc/laas/other_key");
  const credentials = {
    rootPassword: "Qx7-fR2~pLm9.Tz4_Kw8",
    vpnPassword: "an entirely different secret",
    note: 'ünïcödé and "quotes" and\nnewlines',
  };
  const booking = "417";

  it("opens what it sealed, with the key in either accepted form", () => {
    const sealed = sealCredentials(base64Key, booking, credentials);
    expect(openCredentials(base64Key, booking, sealed)).toEqual(credentials);
    expect(openCredentials(hexKey, booking, sealed)).toEqual(credentials);
    expect(openCredentials(base64Key, booking, `  ${sealed}\n`)).toEqual(credentials);
    expect(openCredentials(base64Key, booking, sealCredentials(base64Key, booking, {}))).toEqual(
      {},
    );
    const manual = "manual-pod1-20250101T000000Z";
    expect(
      openCredentials(base64Key, manual, sealCredentials(base64Key, manual, credentials)),
    ).toEqual(credentials);
  });

  it("writes v2.<booking>.<iv>.<tag>.<ciphertext> in base64url, with a fresh IV each time", () => {
    const sealed = sealCredentials(base64Key, booking, credentials);
    expect(sealed).toMatch(/^v2\.NDE3\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    const again = sealCredentials(base64Key, booking, credentials);
    expect(again.split(".")[2]).not.toBe(sealed.split(".")[2]);
    expect(again.split(".")[4]).not.toBe(sealed.split(".")[4]);
  });

  it("holds nothing of the plaintext, in clear or in base64", () => {
    const sealed = sealCredentials(base64Key, booking, credentials);
    for (const text of [...Object.keys(credentials), ...Object.values(credentials)]) {
      for (const form of [
        text,
        Buffer.from(text).toString("base64"),
        Buffer.from(text).toString("base64url"),
      ]) {
        expect(sealed).not.toContain(form.slice(0, 8));
      }
    }
  });

  it("refuses a text changed anywhere, saying so without quoting anything secret", () => {
    const sealed = sealCredentials(base64Key, booking, credentials);
    const parts = sealed.split(".");
    for (const index of [2, 3, 4]) {
      const part = parts[index]!;
      const flipped = part[5] === "A" ? "B" : "A";
      const altered = [...parts];
      altered[index] = `${part.slice(0, 5)}${flipped}${part.slice(6)}`;
      const error = catching(() => openCredentials(base64Key, booking, altered.join(".")));
      expect(error).toBeInstanceOf(SealedCredentialsError);
      expect(error.name).toBe("SealedCredentials");
      expect(error.message).toMatch(/not the one they were sealed with, .*or the text was altered/);
      expect(error.message).toContain(`booking ${booking}:`);
      expectNothingSecretIn(error.message, sealed);
    }
    // A version label changed: the version is authenticated too.
    expect(() => openCredentials(base64Key, booking, sealed.replace(/^v2/, "v3"))).toThrow(
      SealedCredentialsError,
    );
  });

  it("opens only on the booking it was sealed for", () => {
    const sealed = sealCredentials(base64Key, "417", credentials);
    expect(openCredentials(base64Key, "417", sealed)).toEqual(credentials);
    // Copied onto another booking as it is: refused, naming both bookings, nothing secret.
    for (const other of ["418", "4170", "41", "manual-417"]) {
      const error = catching(() => openCredentials(base64Key, other, sealed));
      expect(error).toBeInstanceOf(SealedCredentialsError);
      expect(error.message).toBe(
        `booking ${other}: the sealed credentials on it say they were sealed for booking "417": ` +
          "sealed credentials open only on their own booking",
      );
      expectNothingSecretIn(error.message, sealed);
    }
  });

  it("does not open on another booking when relabelled for it: the booking is authenticated", () => {
    const sealed = sealCredentials(base64Key, "417", credentials);
    const parts = sealed.split(".");
    parts[1] = Buffer.from("418").toString("base64url");
    const error = catching(() => openCredentials(base64Key, "418", parts.join(".")));
    expect(error).toBeInstanceOf(SealedCredentialsError);
    expect(error.message).toMatch(
      /^booking 418: sealed credentials cannot be opened with the sealing key \(\/etc\/laas\/sealing_key\): .*sealed for another booking/,
    );
    expectNothingSecretIn(error.message, sealed);
    // Nor does a text relabelled away from its booking open on it.
    expect(() => openCredentials(base64Key, "417", parts.join("."))).toThrow(
      /say they were sealed for booking "418"/,
    );
  });

  it("refuses a text of the v1 form (sealed without a booking), naming what clears it", () => {
    // How v1 sealed, before the booking was authenticated: the version alone as additional data.
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", keyBytes, iv, { authTagLength: 16 });
    cipher.setAAD(Buffer.from("v1"));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(credentials)), cipher.final()]);
    const v1 = ["v1", iv, cipher.getAuthTag(), ciphertext]
      .map((part) => (typeof part === "string" ? part : part.toString("base64url")))
      .join(".");
    const error = catching(() => openCredentials(base64Key, booking, v1));
    expect(error).toBeInstanceOf(SealedCredentialsError);
    expect(error.message).toMatch(
      /^booking 417: its sealed credentials are of the v1 form, sealed before credentials were bound to their booking, and are not opened/,
    );
    expect(error.message).toContain("`laas deploy --reset --host <its host>`");
    expectNothingSecretIn(error.message, v1);
  });

  it("refuses another key the same way", () => {
    const sealed = sealCredentials(base64Key, booking, credentials);
    const error = catching(() => openCredentials(otherKey, booking, sealed));
    expect(error).toBeInstanceOf(SealedCredentialsError);
    expect(error.message).toContain("/etc/laas/other_key");
    expectNothingSecretIn(error.message, sealed);
  });

  it("refuses malformed texts before trying to open them", () => {
    for (const text of [
      "",
      "v2",
      "v2.NDE3.a.b",
      "v2.NDE3.a.b.c.d",
      "v2.NDE3.@@@@.AAAA.AAAA",
      "v2.a.b.c",
      "plain text",
    ]) {
      const error = catching(() => openCredentials(base64Key, booking, text));
      expect(error).toBeInstanceOf(SealedCredentialsError);
    }
    const [version, label, , tag, ciphertext] = sealCredentials(
      base64Key,
      booking,
      credentials,
    ).split(".");
    const shortIv = [version, label, "AAAA", tag, ciphertext].join(".");
    expect(catching(() => openCredentials(base64Key, booking, shortIv)).message).toMatch(
      /12-byte IV/,
    );
  });

  it("refuses to seal or open without a booking", () => {
    expect(() => sealCredentials(base64Key, "", credentials)).toThrow(
      /need the id of the booking they belong to/,
    );
    const sealed = sealCredentials(base64Key, booking, credentials);
    expect(() => openCredentials(base64Key, "", sealed)).toThrow(
      /need the id of the booking they belong to/,
    );
  });

  it("refuses a key that is not 32 bytes as a ConfigError naming where it came from", () => {
    const bad = new Secret("not-a-key-at-all-but-a-secret-value", "/etc/laas/sealing_key");
    const error = catching(() => sealCredentials(bad, booking, credentials));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("/etc/laas/sealing_key");
    expect(error.message).not.toContain(bad.reveal());
    expect(() =>
      openCredentials(bad, booking, sealCredentials(base64Key, booking, credentials)),
    ).toThrow(ConfigError);
  });

  function expectNothingSecretIn(message: string, sealed: string): void {
    for (const key of [base64Key, hexKey, otherKey]) expect(message).not.toContain(key.reveal());
    for (const value of Object.values(credentials)) expect(message).not.toContain(value);
    for (const part of sealed.split(".").slice(2)) expect(message).not.toContain(part);
  }
});

describe("parseSshPublicKey", () => {
  let dir: string;
  const made = new Map<string, { publicKey: string; privateKey: string; fingerprint: string }>();

  /** A key made by ssh-keygen, with its fingerprint as ssh-keygen -l prints it. */
  async function keygen(name: string, args: string[], comment = "user@laptop") {
    const file = join(dir, name);
    await run("ssh-keygen", ["-q", ...args, "-N", "", "-C", comment, "-f", file]);
    made.set(name, {
      publicKey: await readFile(`${file}.pub`, "utf8"),
      privateKey: await readFile(file, "utf8"),
      fingerprint: await fingerprintBySshKeygen(`${file}.pub`),
    });
  }

  async function fingerprintBySshKeygen(file: string): Promise<string> {
    const { stdout } = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", file]);
    return stdout.split(" ")[1] ?? "";
  }

  /** ssh-keygen's fingerprint of a public key line it never made (FIDO keys need a device). */
  async function fingerprintOfLine(line: string): Promise<string> {
    const file = join(dir, `line-${randomBytes(4).toString("hex")}.pub`);
    await writeFile(file, `${line}\n`);
    return fingerprintBySshKeygen(file);
  }

  function key(name: string) {
    const found = made.get(name);
    if (!found) throw new Error(`no test key ${name}`);
    return found;
  }

  beforeAll(async () => {
    await ensureOpenSshServer();
    dir = await mkdtemp(join(tmpdir(), "laas-pubkeys-"));
    await Promise.all([
      keygen("ed25519", ["-t", "ed25519"]),
      keygen("ecdsa256", ["-t", "ecdsa", "-b", "256"]),
      keygen("ecdsa384", ["-t", "ecdsa", "-b", "384"]),
      keygen("ecdsa521", ["-t", "ecdsa", "-b", "521"]),
      keygen("rsa2048", ["-t", "rsa", "-b", "2048"]),
      keygen("rsa1024", ["-t", "rsa", "-b", "1024"]),
      keygen("bare", ["-t", "ed25519"], ""),
    ]);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("accepts the key types OpenSSH makes, with ssh-keygen's fingerprint", () => {
    const expected: [string, string][] = [
      ["ed25519", "ssh-ed25519"],
      ["ecdsa256", "ecdsa-sha2-nistp256"],
      ["ecdsa384", "ecdsa-sha2-nistp384"],
      ["ecdsa521", "ecdsa-sha2-nistp521"],
      ["rsa2048", "ssh-rsa"],
    ];
    for (const [name, type] of expected) {
      const made = key(name);
      const parsed = parseSshPublicKey(made.publicKey);
      expect(parsed, name).toEqual({
        ok: true,
        line: made.publicKey.trim(),
        type,
        fingerprint: made.fingerprint,
        comment: "user@laptop",
      });
    }
  });

  it("accepts FIDO keys (sk-ssh-ed25519, sk-ecdsa-sha2-nistp256), with ssh-keygen's fingerprint", async () => {
    const edLine = `sk-ssh-ed25519@openssh.com ${wire(
      "sk-ssh-ed25519@openssh.com",
      randomBytes(32),
      "ssh:",
    )} yubikey`;
    const jwk = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
      format: "jwk",
    });
    const point = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(jwk.x ?? "", "base64url"),
      Buffer.from(jwk.y ?? "", "base64url"),
    ]);
    const ecLine = `sk-ecdsa-sha2-nistp256@openssh.com ${wire(
      "sk-ecdsa-sha2-nistp256@openssh.com",
      "nistp256",
      point,
      "ssh:",
    )}`;
    for (const line of [edLine, ecLine]) {
      const parsed = parseSshPublicKey(line);
      expect(parsed.ok ? parsed.fingerprint : parsed.reason).toBe(await fingerprintOfLine(line));
      expect(parsed).toMatchObject({ ok: true, line });
    }
    // Without the application field, or with a point off the curve, they are not keys.
    const noApplication = `sk-ssh-ed25519@openssh.com ${wire("sk-ssh-ed25519@openssh.com", randomBytes(32))}`;
    const offCurve = Buffer.from(point);
    offCurve[40] = (offCurve[40] ?? 0) ^ 1;
    const offCurveLine = `sk-ecdsa-sha2-nistp256@openssh.com ${wire(
      "sk-ecdsa-sha2-nistp256@openssh.com",
      "nistp256",
      offCurve,
      "ssh:",
    )}`;
    for (const line of [noApplication, offCurveLine]) {
      expect(parseSshPublicKey(line)).toEqual({
        ok: false,
        reason: "the key data is not a valid key of its type",
      });
    }
  });

  it("trims blanks and newlines around the line and re-builds it with single spaces", () => {
    const [type, base64] = key("ed25519").publicKey.trim().split(" ");
    const parsed = parseSshPublicKey(`\n  ${type}\t ${base64}   my\tlaptop  key \r\n\n`);
    expect(parsed).toMatchObject({
      ok: true,
      line: `${type} ${base64} my laptop key`,
      comment: "my laptop key",
    });
    const bare = parseSshPublicKey(key("bare").publicKey);
    expect(bare).toMatchObject({ ok: true, comment: "", line: key("bare").publicKey.trim() });
  });

  it("refuses what is not exactly one acceptable public key line, without quoting it", () => {
    const ed = key("ed25519").publicKey.trim();
    const [type = "", base64 = ""] = ed.split(" ");
    const blob = Buffer.from(base64, "base64");
    const ecdsaBlob = Buffer.from(key("ecdsa256").publicKey.split(" ")[1] ?? "", "base64");
    const cases: [string, string, RegExp][] = [
      ["empty", " \n ", /no SSH public key/],
      ["two keys", `${ed}\n${key("rsa2048").publicKey}`, /more than one line/],
      ["command= option", `command="/bin/true" ${ed}`, /options .* not accepted/],
      ["from= option", `from="10.0.0.0/8",no-pty ${ed}`, /options .* not accepted/],
      ["restrict option", `restrict ${ed}`, /options .* not accepted/],
      ["private key", key("ed25519").privateKey, /private key/],
      ["PEM private key", `-----BEGIN RSA PRIVATE KEY-----\n${base64}\n-----END`, /private key/],
      ["garbage", "hello, this is my key", /not an SSH public key/],
      ["a type alone", type, /no key data/],
      ["not base64", `${type} ${base64.slice(0, -4)}!!!!`, /not base64/],
      ["truncated", `${type} ${blob.subarray(0, 30).toString("base64")}`, /not a valid key/],
      [
        "trailing data",
        `${type} ${Buffer.concat([blob, Buffer.from([0, 0, 0, 1, 7])]).toString("base64")}`,
        /not a valid key/,
      ],
      ["another type's data", `ssh-ed25519 ${ecdsaBlob.toString("base64")}`, /another type/],
      ["RSA of 1024 bits", key("rsa1024").publicKey, /at least 2048 bits \(this one has 1024\)/],
      ["DSA", `ssh-dss ${base64} x`, /DSA keys are not accepted/],
      ["certificate", `ssh-ed25519-cert-v01@openssh.com ${base64}`, /certificates/],
      ["RFC 4716", `---- BEGIN SSH2 PUBLIC KEY ----\n${base64}\n---- END`, /RFC 4716/],
      ["escape in comment", `${ed} evil\x1b[2Jcomment`, /control or invisible/],
      ["bell in comment", `${ed} ding\x07`, /control or invisible/],
      ["bidi override in comment", `${ed} user\u202Egnp.exe`, /control or invisible/],
      ["line separator in comment", `${ed} a\u2028b`, /control or invisible/],
      ["over 16 KiB", `${ed} ${"x".repeat(MAX_PUBLIC_KEY_BYTES)}`, /too long/],
    ];
    for (const [what, text, reason] of cases) {
      const parsed = parseSshPublicKey(text);
      expect(parsed.ok, what).toBe(false);
      if (parsed.ok) continue;
      expect(parsed.reason, what).toMatch(reason);
      expect(parsed.reason.length, what).toBeLessThan(200);
      for (const piece of [base64.slice(8, 40), "evil", "hello", "/bin/true", "10.0.0.0"]) {
        expect(parsed.reason, what).not.toContain(piece);
      }
    }
  });

  it("refuses an RSA key whose modulus is not a positive number, though long enough", () => {
    // High bit set without a leading zero byte: a negative mpint (RFC 4251 5), 2048 bits long.
    const modulus = Buffer.alloc(256, 0xff);
    const line = `ssh-rsa ${wire("ssh-rsa", Buffer.from([1, 0, 1]), modulus)}`;
    expect(parseSshPublicKey(line)).toEqual({
      ok: false,
      reason: "the key data is not a valid key of its type",
    });
  });

  it("computes the fingerprint the way OpenSSH does (SHA-256 of the blob, unpadded base64)", () => {
    const parsed = parseSshPublicKey(key("ed25519").publicKey);
    const blob = Buffer.from(key("ed25519").publicKey.split(" ")[1] ?? "", "base64");
    const digest = createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
    expect(parsed).toMatchObject({ fingerprint: `SHA256:${digest}` });
  });
});

/** SSH wire format: each field as a 4-byte length and its bytes; base64 of the whole. */
function wire(...fields: (string | Buffer)[]): string {
  return Buffer.concat(
    fields.flatMap((field) => {
      const bytes = typeof field === "string" ? Buffer.from(field) : field;
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }),
  ).toString("base64");
}

function catching(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`threw a non-error: ${String(error)}`);
  }
  throw new Error("expected a failure, but it succeeded");
}
