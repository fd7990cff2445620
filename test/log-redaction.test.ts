/**
 * Redaction through the real logger: createLogger writing to a file, the file read back. Every
 * credential below is planted where a log call might carry it — nested objects, arrays, errors
 * (fields and causes), child bindings — and none may reach the file, while the fields around
 * them must.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../lib/log";
import { isCensoredField, MAX_DEPTH } from "../lib/log-redact";
import { Secret } from "../lib/secret";

const dirs: string[] = [];
afterEach(async () => {
  while (dirs.length > 0) await rm(dirs.pop()!, { recursive: true, force: true });
});

/** Logs with a real logger into a file, flushes it, and answers the lines written, parsed. */
async function logged(
  write: (logger: ReturnType<typeof createLogger>) => void,
): Promise<{ text: string; lines: Record<string, unknown>[] }> {
  const dir = await mkdtemp(join(tmpdir(), "laas-log-"));
  dirs.push(dir);
  const file = join(dir, "logs", "laas.log");
  const logger = createLogger({ destination: file, level: "debug" });
  write(logger);
  logger.flush();
  const text = await readFile(file, "utf8");
  const lines = text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { text, lines };
}

function byMessage(lines: Record<string, unknown>[], msg: string): Record<string, unknown> {
  const line = lines.find((l) => l.msg === msg);
  if (!line) throw new Error(`no line "${msg}" in ${JSON.stringify(lines)}`);
  return line;
}

describe("the logger's redaction", () => {
  it("prints a Secret as [secret] at any depth, in arrays and in errors", async () => {
    const values = ["secret-in-array-1", "secret-deep-2", "secret-on-error-3", "secret-cause-4"];
    const [inArray, deep, onError, onCause] = values.map((v) => new Secret(v));
    const cause = Object.assign(new Error("the cause"), { credential: onCause });
    const error = Object.assign(new Error("it failed", { cause }), { credential: onError });
    const { text, lines } = await logged((logger) => {
      logger.info({ list: [{ item: inArray }], a: { b: { c: { d: deep } } } }, "nested secrets");
      logger.error({ err: error, errors: [error] }, "an error holding secrets");
    });
    for (const value of values) expect(text).not.toContain(value);
    const nested = byMessage(lines, "nested secrets");
    expect(nested.list).toEqual([{ item: "[secret]" }]);
    expect(nested.a).toEqual({ b: { c: { d: "[secret]" } } });
    const failed = byMessage(lines, "an error holding secrets");
    // The error is still an error in the log: its type, message and stack, with the cause's.
    expect(failed.err).toMatchObject({
      type: "Error",
      message: "it failed: the cause",
      credential: "[secret]",
    });
    expect(String((failed.err as { stack: string }).stack)).toContain(
      "caused by: Error: the cause",
    );
    expect(failed.errors).toEqual([expect.objectContaining({ credential: "[secret]" })]);
  });

  it("censors credential fields by name at any depth, in arrays, errors and child bindings", async () => {
    const planted = {
      password: "pw-top-1",
      token: "tk-nested-2",
      apiKey: "ak-array-3",
      USERKEY: "uk-upper-4",
      pass: "pass-error-5",
      secret: "sec-binding-6",
      authorization: "Token auth-7",
      sealedCredentials: "v2.sealed-8",
      vpnPassword: "vpn-pw-9",
      api_key: "snake-10",
    };
    const error = Object.assign(new Error("LDAP bind refused"), {
      request: { pass: planted.pass, user: "cn=admin" },
    });
    const { text, lines } = await logged((logger) => {
      logger.info(
        {
          bookingId: "42",
          password: planted.password,
          outer: { inner: { token: planted.token } },
          list: [{ apiKey: planted.apiKey }, { deeper: [{ USERKEY: planted.USERKEY }] }],
          access: { sealedCredentials: planted.sealedCredentials, vpnUser: "jdoe" },
          headers: { authorization: planted.authorization, accept: "application/json" },
          opened: { vpnPassword: planted.vpnPassword, api_key: planted.api_key },
        },
        "fields by name",
      );
      logger.warn({ err: error }, "an error with a credential field");
      logger
        .child({ bookingId: "43", connection: { secret: planted.secret } })
        .child({ phase: "provision" })
        .info({ step: "CreateVpnUser" }, "from a child");
    });
    for (const value of Object.values(planted)) expect(text).not.toContain(value);

    const fields = byMessage(lines, "fields by name");
    expect(fields).toMatchObject({
      bookingId: "42",
      password: "[redacted]",
      outer: { inner: { token: "[redacted]" } },
      list: [{ apiKey: "[redacted]" }, { deeper: [{ USERKEY: "[redacted]" }] }],
      access: { sealedCredentials: "[redacted]", vpnUser: "jdoe" },
      headers: "[redacted]",
      opened: { vpnPassword: "[redacted]", api_key: "[redacted]" },
    });
    const failed = byMessage(lines, "an error with a credential field");
    expect(failed.err).toMatchObject({
      type: "Error",
      message: "LDAP bind refused",
      request: { pass: "[redacted]", user: "cn=admin" },
    });
    const child = byMessage(lines, "from a child");
    expect(child).toMatchObject({
      bookingId: "43",
      phase: "provision",
      step: "CreateVpnUser",
      connection: { secret: "[redacted]" },
    });
  });

  it("survives cycles and bounds the depth, leaving the caller's objects as they were", async () => {
    const cyclic: Record<string, unknown> = { name: "loop", password: "cyclic-pw" };
    cyclic.self = cyclic;
    let deep: Record<string, unknown> = { password: "too-deep-pw", note: "bottom" };
    for (let i = 0; i < MAX_DEPTH + 5; i++) deep = { level: i, next: deep };
    const { text, lines } = await logged((logger) => {
      logger.info({ cyclic, deep }, "awkward shapes");
    });
    expect(text).not.toContain("cyclic-pw");
    expect(text).not.toContain("too-deep-pw");
    const line = byMessage(lines, "awkward shapes");
    expect(line.cyclic).toEqual({ name: "loop", password: "[redacted]", self: "[circular]" });
    expect(text).toContain("[too deep]");
    // Redaction copies: what was logged is unchanged.
    expect(cyclic.password).toBe("cyclic-pw");
    expect(cyclic.self).toBe(cyclic);
  });

  it("keeps fields that only look alike", () => {
    for (const name of [
      "compass",
      "bypassed",
      "hostKey",
      "sshKey",
      "passes",
      "tokens",
      "accessKeyId",
      "publicKey",
    ]) {
      expect(isCensoredField(name), name).toBe(false);
    }
    for (const name of [
      "Password",
      "api-key",
      "taskToken",
      "clientSecret",
      "Authorization",
      "secretAccessKey",
      "privateKey",
      "sealing_key",
    ]) {
      expect(isCensoredField(name), name).toBe(true);
    }
  });
});
