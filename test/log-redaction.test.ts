/**
 * Redaction through the real logger: createLogger writing to a file, the file read back. Every
 * credential below is planted where a log call might carry it — nested objects, arrays, errors
 * (fields and causes), child bindings — and none may reach the file, while the fields around
 * them must.
 */
import { mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { plainLogLine } from "../lib/cli/plain-log";
import { bookingIdOfLine, bookingLogFile, bookingLogName, createLogger } from "../lib/log";
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

/** How many of this process's open files lie under `folder` (Linux's /proc). */
async function openFilesUnder(folder: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(join("/proc/self/fd", fd)).catch(() => "");
    if (target.startsWith(`${folder}/`)) count += 1;
  }
  return count;
}

describe("the per-booking logs and the terminal's plain lines", () => {
  async function loggedWithBookings(write: (logger: ReturnType<typeof createLogger>) => void) {
    const dir = await mkdtemp(join(tmpdir(), "laas-log-"));
    dirs.push(dir);
    const plain: string[] = [];
    const logger = createLogger({
      destination: join(dir, "laas.log"),
      streams: [{ write: (line) => plain.push(plainLogLine(line)) }],
    });
    write(logger);
    logger.flush();
    return { dir, plain };
  }

  it("write each booking's lines to its own owner-only file, redacted as the main log", async () => {
    const planted = { password: "pw-booking-1", secret: new Secret("sec-booking-2") };
    const { dir, plain } = await loggedWithBookings((logger) => {
      const booking = logger.child({ bookingId: "42", phase: "provision" });
      booking.info({ password: planted.password, key: planted.secret }, "for 42");
      logger.info({ bookingId: "43", token: "tk-booking-3" }, "for 43");
      logger.info("for no booking");
    });
    const file42 = bookingLogFile(dir, "42")!;
    const text42 = await readFile(file42, "utf8");
    const lines42 = text42
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines42).toEqual([
      expect.objectContaining({ msg: "for 42", password: "[redacted]", key: "[secret]" }),
    ]);
    expect(await readFile(bookingLogFile(dir, "43")!, "utf8")).toContain('"token":"[redacted]"');
    expect(await readdir(join(dir, "bookings"))).toEqual(["42.log", "43.log"]);
    expect((await stat(file42)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "bookings"))).mode & 0o777).toBe(0o700);
    // The terminal's plain lines carry the same redacted values.
    const shown = plain.join("\n");
    for (const value of [planted.password, "sec-booking-2", "tk-booking-3"]) {
      expect(shown).not.toContain(value);
    }
    expect(plain).toContainEqual(
      expect.stringMatching(/INFO: for 42 booking=42 .*password=\[redacted\]/),
    );
    expect(plain).toContainEqual(
      expect.stringMatching(/INFO: for 43 booking=43 token=\[redacted\]$/),
    );
  });

  it("never fail a log call: a booking log that cannot be written is given up, said once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "laas-log-"));
    dirs.push(dir);
    // A file where the folder of the booking logs should be: no booking log can be made.
    await writeFile(join(dir, "bookings"), "");
    const said: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => said.push(String(chunk)) > 0) as typeof write;
    try {
      const logger = createLogger({ destination: join(dir, "laas.log") });
      logger.info({ bookingId: "5" }, "first");
      logger.info({ bookingId: "5" }, "second");
      logger.flush();
    } finally {
      process.stderr.write = write;
    }
    const main = await readFile(join(dir, "laas.log"), "utf8");
    expect(
      main
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
    ).toEqual(["first", "second"]);
    expect(said).toEqual([expect.stringMatching(/^laas: the log of booking 5 cannot be written/)]);
  });

  it("find a booking by a regex on the line, escapes included, and never by a nested look-alike", () => {
    expect(bookingIdOfLine('{"level":30,"bookingId":"42","msg":"x"}')).toBe("42");
    expect(bookingIdOfLine(`{"bookingId":${JSON.stringify('a"b\\c')}}`)).toBe('a"b\\c');
    expect(bookingIdOfLine('{"level":30,"msg":"bookingId"}')).toBeNull();
    expect(bookingIdOfLine('{"bookingId":""}')).toBeNull();
  });

  it("name files that stay in their folder, one per id, whatever the id holds", () => {
    expect(bookingLogName("42")).toBe("42.log");
    expect(bookingLogName("manual-fog-machine-4-1796166437971")).toBe(
      "manual-fog-machine-4-1796166437971.log",
    );
    expect(bookingLogName("../../etc/passwd")).toBe("%2e.%2f..%2fetc%2fpasswd.log");
    expect(bookingLogName("a/b")).not.toBe(bookingLogName("a_b"));
    expect(bookingLogName("%2f")).not.toBe(bookingLogName("/"));
    expect(bookingLogName("..")).toBe("%2e..log");
    expect(bookingLogName("x".repeat(129))).toBeNull();
    for (const id of ["../x", "a/b", "..", ".hidden", "é"]) {
      expect(bookingLogName(id)).not.toMatch(/\/|^\./);
    }
  });

  it("keep every line of many bookings, more than the files kept open at once", async () => {
    const ids = Array.from({ length: 40 }, (_, i) => String(i + 1));
    const { dir } = await loggedWithBookings((logger) => {
      for (const round of [1, 2, 3]) {
        for (const id of ids) logger.info({ bookingId: id, round }, "line");
      }
    });
    // At most 32 of them open in this process at once (a lab of many bookings keeps its fds).
    const open = await openFilesUnder(join(dir, "bookings"));
    expect(open).toBeGreaterThan(0);
    expect(open).toBeLessThanOrEqual(32);
    for (const id of ids) {
      const text = await readFile(bookingLogFile(dir, id)!, "utf8");
      expect(
        text
          .trim()
          .split("\n")
          .map((l) => (JSON.parse(l) as { round: number }).round),
      ).toEqual([1, 2, 3]);
    }
  });
});
