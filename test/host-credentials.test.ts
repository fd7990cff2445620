/**
 * Setting an account's password and installing an SSH key on a lab host. First what is sent
 * (argv, standard input, what is refused before anything runs); then against real OpenSSH: one
 * sshd on 127.0.0.1 plays the relay, another on 127.0.0.2 the lab host, which lets accounts in
 * with passwords and their own ~/.ssh/authorized_keys. The account is a throwaway local one made
 * for the test (this machine's root password is never touched); logins with the new credentials
 * are made by an ssh2 client, as the user would. Last, the same on a simulated lab host.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AUTHORIZED_KEY_SCRIPT,
  authorizedKeyArgv,
  InvalidCredentialError,
  installAuthorizedKey,
  SET_PASSWORD_SCRIPT,
  setPassword,
  setPasswordArgv,
} from "../lib/access/host-credentials";
import { generatePassword } from "../lib/access/passwords";
import { parseSshPublicKey } from "../lib/access/ssh-public-key";
import { fingerprintSha256 } from "../lib/adapters/ssh/host-key";
import { type ForwardTargets, type RelayConfig, SshRelay } from "../lib/adapters/ssh/ssh-relay";
import { CommandFailedError, ProtocolError, TransientError } from "../lib/errors";
import type { CommandResult, HostLogin, HostSession, RemoteCommand } from "../lib/ports/relay";
import { Secret } from "../lib/secret";
import { type BareMetalLab, generateClientKey, startBareMetalLab } from "../sim/bare-metal";
import { type RelaySim, startRelaySim } from "../sim/relay-sim";
import {
  ensureOpenSshServer,
  generateSshKey,
  type RunningSshd,
  type SshKeyPair,
  startSshd,
} from "../sim/sshd";
import { capturingLogger } from "./helpers/logs";

const execFileAsync = promisify(execFile);
const AS_ROOT = { loginUser: "root", timeoutSeconds: 20 };
/** The test hosts answer on loopback; their keys are pinned. */
const LOOPBACK: ForwardTargets = { labSubnets: ["127.0.0.0/8"], names: [] };

/** A host session that records what it is asked to run and answers as told. */
function recordingSession(
  answer: (command: RemoteCommand) => CommandResult | Error = () => ({
    exitCode: 0,
    stdout: "added\n",
    stderr: "",
  }),
): { session: HostSession; commands: RemoteCommand[] } {
  const commands: RemoteCommand[] = [];
  const session: HostSession = {
    hostKey: "SHA256:recorded",
    async confirmIdentity() {},
    async run(command) {
      commands.push(command);
      const result = answer(command);
      if (result instanceof Error) throw result;
      return result;
    },
  };
  return { session, commands };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-error: ${String(error)}`);
  }
  throw new Error("expected a failure, but it succeeded");
}

const USER_KEY = generateClientKey();
const USER_KEY_LINE = (() => {
  const parsed = parseSshPublicKey(`${USER_KEY.publicKey} alice@laptop`);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.line;
})();

describe("what setPassword and installAuthorizedKey send", () => {
  it("sets a password with a fixed script, the password on standard input only", async () => {
    const { session, commands } = recordingSession();
    const password = new Secret("s3cret-Pass.word~", "generated");
    await setPassword(session, "root", password, AS_ROOT);
    expect(commands).toEqual([
      {
        argv: ["sh", "-c", SET_PASSWORD_SCRIPT, "sh"],
        stdin: "root:s3cret-Pass.word~\n",
        display: "chpasswd (root)",
        timeoutSeconds: 20,
        idempotent: true,
      },
    ]);
    expect(SET_PASSWORD_SCRIPT).toContain("chpasswd");
    expect(commands[0]!.argv.join(" ")).not.toContain("s3cret");
  });

  it("goes through sudo -n when the login is not root", async () => {
    const { session, commands } = recordingSession();
    await setPassword(session, "root", generatePassword(), {
      loginUser: "laas",
      timeoutSeconds: 5,
    });
    await installAuthorizedKey(session, "alice", USER_KEY_LINE, {
      loginUser: "laas",
      timeoutSeconds: 5,
    });
    expect(commands.map((command) => command.argv)).toEqual([
      ["sudo", "-n", "sh", "-c", SET_PASSWORD_SCRIPT, "sh"],
      ["sudo", "-n", "sh", "-c", AUTHORIZED_KEY_SCRIPT, "sh", "alice"],
    ]);
    expect(setPasswordArgv("laas")).toEqual(commands[0]!.argv);
    expect(authorizedKeyArgv("laas", "alice")).toEqual(commands[1]!.argv);
  });

  it("installs a key with a fixed script: the account an argument, the re-built line on stdin", async () => {
    const { session, commands } = recordingSession();
    const result = await installAuthorizedKey(session, "alice", `  ${USER_KEY_LINE}\n`, AS_ROOT);
    expect(result).toEqual({ added: true });
    const fingerprint = fingerprintSha256(Buffer.from(USER_KEY_LINE.split(" ")[1]!, "base64"));
    expect(commands).toEqual([
      {
        argv: ["sh", "-c", AUTHORIZED_KEY_SCRIPT, "sh", "alice"],
        stdin: `${USER_KEY_LINE}\n`,
        display: `install SSH key ${fingerprint} (alice)`,
        timeoutSeconds: 20,
        idempotent: true,
      },
    ]);
    // Nothing from outside is part of the script.
    expect(AUTHORIZED_KEY_SCRIPT).not.toContain("alice");
    expect(AUTHORIZED_KEY_SCRIPT).not.toContain(USER_KEY_LINE.split(" ")[1]!);
  });

  it("answers whether the key was there already, and fails on an answer it does not know", async () => {
    const present = recordingSession(() => ({ exitCode: 0, stdout: "present\n", stderr: "" }));
    expect(await installAuthorizedKey(present.session, "root", USER_KEY_LINE, AS_ROOT)).toEqual({
      added: false,
    });
    const odd = recordingSession(() => ({ exitCode: 0, stdout: "what?\n", stderr: "" }));
    const error = await failure(installAuthorizedKey(odd.session, "root", USER_KEY_LINE, AS_ROOT));
    expect(error).toBeInstanceOf(ProtocolError);
  });

  it("refuses account names that are not plain user names, before anything runs", async () => {
    const { session, commands } = recordingSession();
    const names = ["", "-rf", "root:x", "a\nb", "1000", "a b", "x".repeat(33), "ro$ot", "../x"];
    for (const name of names) {
      const onPassword = await failure(setPassword(session, name, generatePassword(), AS_ROOT));
      expect(onPassword, JSON.stringify(name)).toBeInstanceOf(InvalidCredentialError);
      expect(onPassword.name).toBe("InvalidCredential");
      const onKey = await failure(installAuthorizedKey(session, name, USER_KEY_LINE, AS_ROOT));
      expect(onKey, JSON.stringify(name)).toBeInstanceOf(InvalidCredentialError);
    }
    for (const name of ["root", "alice", "_apt", "Bob.Smith", "user-1", "a".repeat(32)]) {
      await setPassword(session, name, generatePassword(), AS_ROOT);
    }
    expect(commands).toHaveLength(6);
  });

  it("refuses passwords chpasswd cannot take, without showing them", async () => {
    const { session, commands } = recordingSession();
    for (const value of ["", "two\nlines", "carriage\rreturn", "nul\0byte", "x".repeat(513)]) {
      const error = await failure(setPassword(session, "root", new Secret(value, "test"), AS_ROOT));
      expect(error).toBeInstanceOf(InvalidCredentialError);
      if (value !== "") expect(error.message).not.toContain(value);
    }
    expect(commands).toHaveLength(0);
  });

  it("refuses a key line that is not an acceptable public key, before anything runs", async () => {
    const { session, commands } = recordingSession();
    for (const line of [`command="sh" ${USER_KEY_LINE}`, USER_KEY.privateKey, "garbage"]) {
      const error = await failure(installAuthorizedKey(session, "root", line, AS_ROOT));
      expect(error).toBeInstanceOf(InvalidCredentialError);
      expect(error.message).not.toContain("garbage");
    }
    expect(commands).toHaveLength(0);
  });

  it("withholds chpasswd output that quotes the password, and keeps its exit status (in sh)", async () => {
    // A chpasswd that repeats its input, as a misbehaving PAM module might.
    const bin = await mkdtemp(join(tmpdir(), "laas-fake-chpasswd-"));
    try {
      const fake = [
        "#!/bin/sh",
        "IFS= read -r line",
        'echo "chpasswd: cannot set $line"',
        'account=$(echo "$line" | cut -d: -f1)',
        'echo "chpasswd: account $account left as it was" >&2',
        "exit 4",
      ];
      await writeFile(join(bin, "chpasswd"), `${fake.join("\n")}\n`, { mode: 0o755 });
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` };
      const argv = setPasswordArgv("root");
      const result = await runLocally(argv[0]!, argv.slice(1), "alice:Top-Secret.9\n", env);
      expect(result).toEqual({
        code: 4,
        stdout: "",
        stderr:
          "chpasswd: (an output line quoting the password was withheld)\n" +
          "chpasswd: account alice left as it was\n",
      });
      const empty = await runLocally(argv[0]!, argv.slice(1), "", env);
      expect(empty.code).toBe(2);
      expect(empty.stderr).toContain("expected one account:password line");
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  it("keeps the password out of an error, whatever the session reports, and keeps its class", async () => {
    const password = new Secret("Leaky-Pass-123", "generated");
    const answers = [
      new CommandFailedError("`chpasswd (root)` failed; end of its stderr:\nbad Leaky-Pass-123"),
      new TransientError("connection lost while Leaky-Pass-123 was being set"),
    ];
    for (const answer of answers) {
      const { session } = recordingSession(() => answer);
      const error = await failure(setPassword(session, "root", password, AS_ROOT));
      expect(error).toBeInstanceOf(answer.constructor);
      expect(error.message).not.toContain("Leaky-Pass-123");
      expect(error.stack ?? "").not.toContain("Leaky-Pass-123");
      expect(error.message).toContain("[secret]");
    }
  });
});

// ---------------------------------------------------------------------------------------------

const SUDO = "/usr/bin/sudo";

/** Installs sudo when missing, to run the product's commands from a login that is not root. */
async function ensureSudo(): Promise<void> {
  if (existsSync(SUDO)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = ["-o", "DPkg::Lock::Timeout=300", "install", "-y", "sudo"];
  try {
    await execFileAsync("apt-get", install, { env, timeout: 600_000 });
  } catch {
    await execFileAsync("apt-get", ["-o", "DPkg::Lock::Timeout=300", "update"], {
      env,
      timeout: 600_000,
    });
    await execFileAsync("apt-get", install, { env, timeout: 600_000 });
  }
  if (!existsSync(SUDO)) throw new Error(`sudo installed but ${SUDO} is missing`);
}

/** Runs a local command with `input` on its standard input, to its end. */
function runLocally(
  command: string,
  args: string[],
  input: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function passwdEntry(name: string): Promise<{ uid: number; gid: number; home: string }> {
  const fields = (await execFileAsync("getent", ["passwd", name])).stdout.trim().split(":");
  return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? "" };
}

interface LoginTarget {
  address: string;
  port: number;
  hostKeyFingerprint: string;
}

type LoginResult = { accepted: false } | { accepted: true; output: string };

/**
 * Logs in as the user would, with a password or a private key only (no agent, no prompts),
 * requiring the expected host key; runs `command` when given and answers its output.
 */
function login(
  target: LoginTarget,
  username: string,
  auth: { password: string } | { privateKey: string },
  command?: string,
): Promise<LoginResult> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let done = false;
    const finish = (result: LoginResult | Error): void => {
      if (done) return;
      done = true;
      client.end();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    client.on("ready", () => {
      if (command === undefined) {
        finish({ accepted: true, output: "" });
        return;
      }
      client.exec(command, (error, channel) => {
        if (error) {
          finish(error);
          return;
        }
        let output = "";
        channel.on("data", (chunk: Buffer) => {
          output += chunk.toString();
        });
        channel.stderr.on("data", () => {});
        channel.on("close", () => finish({ accepted: true, output }));
      });
    });
    client.on("error", (error: Error & { level?: string }) => {
      finish(error.level === "client-authentication" ? { accepted: false } : error);
    });
    client.connect({
      host: target.address,
      port: target.port,
      username,
      ...auth,
      tryKeyboard: false,
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => fingerprintSha256(key) === target.hostKeyFingerprint,
    });
  });
}

describe("on a real OpenSSH host, through a relay", () => {
  const suffix = randomBytes(4).toString("hex");
  /** The account whose credentials are set: made for the test, removed after it. */
  const account = `laastarget${suffix}`;
  /** A second throwaway account that may run anything through sudo without a password. */
  const admin = `laasadmin${suffix}`;
  const missing = `laasmissing${suffix}`;
  const sudoersFile = `/etc/sudoers.d/laas-test-${suffix}`;
  const oldPassword = generatePassword().reveal();
  const { logger, lines: productLogs } = capturingLogger("debug");
  /** Everything that must never show in a log. */
  const secrets: string[] = [oldPassword];
  const made: string[] = [];
  let labKey: SshKeyPair;
  let userKey: SshKeyPair;
  let otherKey: SshKeyPair;
  let relaySshd: RunningSshd;
  let targetSshd: RunningSshd;
  let home: string;
  let uid: number;
  let gid: number;

  const privateParts = (key: SshKeyPair) =>
    key.privateKey.split("\n").filter((line) => line.length > 0 && !line.startsWith("-----"));
  const fresh = (): Secret => {
    const password = generatePassword();
    secrets.push(password.reveal());
    return password;
  };
  const keyLine = (key: SshKeyPair): string => {
    const parsed = parseSshPublicKey(key.publicKey);
    if (!parsed.ok) throw new Error(parsed.reason);
    return parsed.line;
  };
  const target = (): LoginTarget => targetSshd;
  const sshDir = () => join(home, ".ssh");
  const keysFile = () => join(home, ".ssh", "authorized_keys");

  beforeAll(async () => {
    await Promise.all([ensureOpenSshServer(), ensureSudo()]);
    [labKey, userKey, otherKey] = await Promise.all([
      generateSshKey("lab"),
      generateSshKey("alice@laptop"),
      generateSshKey("alice@desktop"),
    ]);
    for (const key of [labKey, userKey, otherKey]) secrets.push(...privateParts(key));

    await execFileAsync("useradd", ["-m", "-s", "/bin/sh", account]);
    made.push(account);
    await execFileAsync("useradd", ["-m", "-s", "/bin/sh", admin]);
    made.push(admin);
    // An old password, so the account is not locked and a stale password can be tried.
    const set = await runLocally("chpasswd", [], `${account}:${oldPassword}\n`);
    if (set.code !== 0) throw new Error(`chpasswd failed: ${set.stderr}`);
    // "*": no password works, but the account is not locked (sshd refuses locked ones).
    await execFileAsync("usermod", ["-p", "*", admin]);
    await writeFile(sudoersFile, `${admin} ALL=(root) NOPASSWD: ALL\n`, { mode: 0o440 });
    // sshd reads a user's keys as that user: the admin's come from its own home, not the temp dir.
    const adminSsh = join((await passwdEntry(admin)).home, ".ssh");
    await mkdir(adminSsh, { mode: 0o700 });
    await writeFile(join(adminSsh, "authorized_keys"), `${labKey.publicKey}\n`, { mode: 0o600 });
    await execFileAsync("chown", ["-R", `${admin}:${admin}`, adminSsh]);
    ({ uid, gid, home } = await passwdEntry(account));

    [relaySshd, targetSshd] = await Promise.all([
      startSshd({ address: "127.0.0.1", authorizedKeys: [labKey.publicKey] }),
      startSshd({
        address: "127.0.0.2",
        authorizedKeys: [labKey.publicKey],
        allowPasswords: true,
        userAuthorizedKeys: true,
      }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([relaySshd?.stop(), targetSshd?.stop()]);
    await rm(sudoersFile, { force: true });
    for (const name of made) {
      // userdel warns (exit 12) when the account has no mail spool; the account is gone anyway.
      await execFileAsync("userdel", ["-r", name]).catch(() => undefined);
    }
    for (const name of made) {
      await expect(execFileAsync("getent", ["passwd", name])).rejects.toThrow();
    }
  });

  function relayConfig(): RelayConfig {
    return {
      host: relaySshd.address,
      port: relaySshd.port,
      user: "root",
      key: new Secret(labKey.privateKey, "/etc/laas/relay_key"),
      hostKey: relaySshd.hostKeyFingerprint,
      timeoutSeconds: 10,
      hostIdentity: "pinned",
    };
  }

  function hostLogin(user: string): HostLogin {
    return {
      hostName: "pod1-node1",
      address: targetSshd.address,
      port: targetSshd.port,
      user,
      key: new Secret(labKey.privateKey, "/etc/laas/host_key"),
      expectedHostKey: targetSshd.hostKeyFingerprint,
      identity: { kind: "pinned" },
    };
  }

  /** Logs in to the host through the relay as the product does, its logs captured. */
  function onHost<T>(work: (host: HostSession) => Promise<T>, user = "root"): Promise<T> {
    return new SshRelay(relayConfig(), LOOPBACK, logger).session(async (session) =>
      work(await session.host(hostLogin(user))),
    );
  }

  async function expectOwnedModes(path: string, mode: number): Promise<void> {
    const info = await lstat(path);
    expect(info.isSymbolicLink()).toBe(false);
    expect(info.mode & 0o777).toBe(mode);
    expect([info.uid, info.gid]).toEqual([uid, gid]);
  }

  it("sets the password: the account logs in with it over SSH, no longer with the old one", async () => {
    // Password logins work at all, and the old password is the account's until now.
    expect(await login(target(), account, { password: oldPassword })).toEqual({
      accepted: true,
      output: "",
    });
    const password = fresh();
    await onHost((host) => setPassword(host, account, password, AS_ROOT));
    expect(await login(target(), account, { password: password.reveal() }, "id -un")).toEqual({
      accepted: true,
      output: `${account}\n`,
    });
    expect(await login(target(), account, { password: oldPassword })).toEqual({ accepted: false });
    expect(await login(target(), account, { password: `${password.reveal()}x` })).toEqual({
      accepted: false,
    });

    // Set again: only the latest one works.
    const next = fresh();
    await onHost((host) => setPassword(host, account, next, AS_ROOT));
    expect(await login(target(), account, { password: next.reveal() })).toMatchObject({
      accepted: true,
    });
    expect(await login(target(), account, { password: password.reveal() })).toEqual({
      accepted: false,
    });
  });

  it("fails for an account the host does not have, naming it, without the password", async () => {
    const password = fresh();
    const error = await failure(onHost((host) => setPassword(host, missing, password, AS_ROOT)));
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.message).toContain(`\`chpasswd (${missing})\``);
    expect(error.message).toContain(`(line 1, user ${missing}) password not changed`);
    expect(error.message).not.toContain(password.reveal());
  });

  it("installs the key: the account logs in with it, ~/.ssh 0700 and the file 0600, the account's", async () => {
    await rm(sshDir(), { recursive: true, force: true });
    expect(await login(target(), account, { privateKey: userKey.privateKey })).toEqual({
      accepted: false,
    });
    const result = await onHost((host) =>
      installAuthorizedKey(host, account, userKey.publicKey, AS_ROOT),
    );
    expect(result).toEqual({ added: true });
    expect(await login(target(), account, { privateKey: userKey.privateKey }, "id -un")).toEqual({
      accepted: true,
      output: `${account}\n`,
    });
    await expectOwnedModes(sshDir(), 0o700);
    await expectOwnedModes(keysFile(), 0o600);
    expect(await readFile(keysFile(), "utf8")).toBe(`${keyLine(userKey)}\n`);
  });

  it("installs a key once: again, or with another comment, it is present; another key goes beneath", async () => {
    await rm(sshDir(), { recursive: true, force: true });
    const install = (line: string) =>
      onHost((host) => installAuthorizedKey(host, account, line, AS_ROOT));
    expect(await install(userKey.publicKey)).toEqual({ added: true });
    expect(await install(userKey.publicKey)).toEqual({ added: false });
    const [type, base64] = userKey.publicKey.split(" ");
    expect(await install(`${type} ${base64} renamed@elsewhere`)).toEqual({ added: false });
    expect(await install(otherKey.publicKey)).toEqual({ added: true });
    expect(await readFile(keysFile(), "utf8")).toBe(`${keyLine(userKey)}\n${keyLine(otherKey)}\n`);
    for (const key of [userKey, otherKey]) {
      expect(await login(target(), account, { privateKey: key.privateKey })).toMatchObject({
        accepted: true,
      });
    }
  });

  it("keeps what was there: ends an unterminated last line, repairs modes and owners, and does not count a commented-out copy", async () => {
    await rm(sshDir(), { recursive: true, force: true });
    await mkdir(sshDir(), { mode: 0o755 });
    const before = `# ${keyLine(userKey)}\n${keyLine(otherKey)}`;
    await writeFile(keysFile(), before, { mode: 0o644 });
    // Made by root here: owned by root, as a careless earlier setup might leave them.
    expect((await stat(keysFile())).uid).toBe(0);

    const result = await onHost((host) =>
      installAuthorizedKey(host, account, userKey.publicKey, AS_ROOT),
    );
    expect(result).toEqual({ added: true });
    expect(await readFile(keysFile(), "utf8")).toBe(`${before}\n${keyLine(userKey)}\n`);
    await expectOwnedModes(sshDir(), 0o700);
    await expectOwnedModes(keysFile(), 0o600);
    expect(await login(target(), account, { privateKey: userKey.privateKey })).toMatchObject({
      accepted: true,
    });
  });

  it("refuses to follow a symbolic link in place of ~/.ssh", async () => {
    await rm(sshDir(), { recursive: true, force: true });
    const elsewhere = await mkdtemp(join(tmpdir(), "laas-not-ssh-"));
    try {
      await symlink(elsewhere, sshDir());
      const error = await failure(
        onHost((host) => installAuthorizedKey(host, account, userKey.publicKey, AS_ROOT)),
      );
      expect(error).toBeInstanceOf(CommandFailedError);
      expect(error.message).toContain("is a symbolic link: not followed");
      expect(await readdir(elsewhere)).toEqual([]);
      const info = await stat(elsewhere);
      expect([info.uid, info.mode & 0o777]).toEqual([0, 0o700]);
    } finally {
      await rm(sshDir(), { force: true });
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it("refuses to follow a symbolic link in place of ~/.ssh/authorized_keys: its target stays as it was", async () => {
    await rm(sshDir(), { recursive: true, force: true });
    await mkdir(sshDir(), { mode: 0o700 });
    const elsewhere = await mkdtemp(join(tmpdir(), "laas-not-keys-"));
    // What a link could point the key at: a root-only file in the form of /etc/shadow.
    const shadow = join(elsewhere, "shadow");
    const content = "root:$y$j9T$notarealhash$notarealhash:19700:0:99999:7:::\n";
    await writeFile(shadow, content, { mode: 0o640 });
    const dangling = join(elsewhere, "not-yet");
    const install = () =>
      failure(onHost((host) => installAuthorizedKey(host, account, userKey.publicKey, AS_ROOT)));
    try {
      await symlink(shadow, keysFile());
      const error = await install();
      expect(error).toBeInstanceOf(CommandFailedError);
      expect(error.message).toContain(`${keysFile()} is a symbolic link: not followed`);
      expect(error.message).toContain("exit code 3");
      expect(await readFile(shadow, "utf8")).toBe(content);
      const info = await stat(shadow);
      expect([info.uid, info.gid, info.mode & 0o777]).toEqual([0, 0, 0o640]);
      // The link itself is left alone too (not handed to the account).
      const link = await lstat(keysFile());
      expect([link.isSymbolicLink(), link.uid]).toEqual([true, 0]);
      expect(await login(target(), account, { privateKey: userKey.privateKey })).toEqual({
        accepted: false,
      });

      // A link to nothing yet: following it would create the file it names.
      await rm(keysFile());
      await symlink(dangling, keysFile());
      expect((await install()).message).toContain(`${keysFile()} is a symbolic link: not followed`);
      expect(existsSync(dangling)).toBe(false);
    } finally {
      await rm(sshDir(), { recursive: true, force: true });
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it("fails for an account the host does not have, naming it", async () => {
    const error = await failure(
      onHost((host) => installAuthorizedKey(host, missing, userKey.publicKey, AS_ROOT)),
    );
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.message).toContain(`no account ${missing} on this host`);
    expect(error.message).toContain("exit code 3");
  });

  it("works from a login that is not root, through sudo -n; without it chpasswd is refused", async () => {
    await rm(sshDir(), { recursive: true, force: true });
    const asAdmin = { loginUser: admin, timeoutSeconds: 20 };
    const password = fresh();
    await onHost(async (host) => {
      await setPassword(host, account, password, asAdmin);
      expect(await installAuthorizedKey(host, account, userKey.publicKey, asAdmin)).toEqual({
        added: true,
      });
    }, admin);
    expect(await login(target(), account, { password: password.reveal() })).toMatchObject({
      accepted: true,
    });
    expect(await login(target(), account, { privateKey: userKey.privateKey })).toMatchObject({
      accepted: true,
    });
    await expectOwnedModes(keysFile(), 0o600);

    // Told it is root when it is not: no sudo, and chpasswd fails for lack of privilege.
    const other = fresh();
    const error = await failure(
      onHost((host) => setPassword(host, account, other, AS_ROOT), admin),
    );
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.message).not.toContain(other.reveal());
    expect(await login(target(), account, { password: other.reveal() })).toEqual({
      accepted: false,
    });
  });

  it("leaves no password and no private key in the product's logs or in sshd's", () => {
    const logs = productLogs.join("\n");
    // The capture works: the commands were logged, under their display.
    expect(logs).toContain(`"command":"chpasswd (${account})"`);
    expect(logs).toContain(`(${account})`);
    const sshdLogs = `${relaySshd.log()}\n${targetSshd.log()}`;
    expect(sshdLogs).toContain(`Accepted password for ${account}`);
    expect(sshdLogs).toContain(`Failed password for ${account}`);
    for (const secret of secrets) {
      expect(logs.includes(secret), "a secret in the product's logs").toBe(false);
      expect(sshdLogs.includes(secret), "a secret in sshd's logs").toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("on a simulated lab host", () => {
  const name = "sim-node1";
  const clientKey = generateClientKey();
  const relayKey = generateClientKey();
  let relay: RelaySim;
  let lab: BareMetalLab;

  beforeAll(async () => {
    relay = await startRelaySim({
      user: "laas",
      authorizedKey: relayKey.publicKey,
      dhcpLogPath: "/var/log/dnsmasq.log",
    });
    lab = await startBareMetalLab({
      hosts: [{ name, address: "127.0.3.21" }],
      authorizedKey: clientKey.publicKey,
      onReboot: () => {},
      imagedBootMs: 20,
    });
    lab.reimage(name);
    await lab.whenUp(name);
  });

  afterAll(async () => {
    await Promise.allSettled([relay?.close(), lab?.close()]);
  });

  const target = (): LoginTarget => ({
    address: "127.0.3.21",
    port: lab.port,
    hostKeyFingerprint: lab.hostKeyFingerprint(name),
  });

  function onHost<T>(work: (host: HostSession) => Promise<T>): Promise<T> {
    const config: RelayConfig = {
      host: relay.address,
      port: relay.port,
      user: "laas",
      key: new Secret(relayKey.privateKey, "relay_key"),
      hostKey: relay.hostKeyFingerprint,
      timeoutSeconds: 10,
      hostIdentity: "pinned",
    };
    return new SshRelay(config, LOOPBACK).session(async (session) =>
      work(
        await session.host({
          hostName: name,
          address: "127.0.3.21",
          port: lab.port,
          user: "root",
          key: new Secret(clientKey.privateKey, "host_key"),
          expectedHostKey: lab.hostKeyFingerprint(name),
          identity: { kind: "pinned" },
        }),
      ),
    );
  }

  it("keeps the last password chpasswd set, and lets root log in with it", async () => {
    const shell = lab.shell(name);
    const [first, second] = [generatePassword(), generatePassword()];
    expect(await login(target(), "root", { password: first.reveal() })).toEqual({
      accepted: false,
    });
    await onHost((host) => setPassword(host, "root", first, AS_ROOT));
    await onHost((host) => setPassword(host, "root", second, AS_ROOT));
    expect(shell.passwords.get("root")).toBe(second.reveal());
    expect(await login(target(), "root", { password: second.reveal() })).toMatchObject({
      accepted: true,
    });
    expect(await login(target(), "root", { password: first.reveal() })).toEqual({
      accepted: false,
    });
    const commands = lab.hostCommands(name);
    expect(commands.at(-1)).toEqual(setPasswordArgv("root"));
    expect(JSON.stringify(commands)).not.toContain(second.reveal());
  });

  it("fails chpasswd for an account it does not have, as Debian does", async () => {
    const error = await failure(
      onHost((host) => setPassword(host, "nobody-here", generatePassword(), AS_ROOT)),
    );
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.message).toContain("(line 1, user nobody-here) password not changed");
  });

  it("keeps the installed key lines per account, once each, and lets the account log in with them", async () => {
    const shell = lab.shell(name);
    shell.accounts.set("alice", { uid: 1000, gid: 1000, home: "/home/alice" });
    shell.directories.add("/home");
    shell.directories.add("/home/alice");
    expect(await login(target(), "alice", { privateKey: USER_KEY.privateKey })).toEqual({
      accepted: false,
    });
    const install = (account: string) =>
      onHost((host) => installAuthorizedKey(host, account, USER_KEY_LINE, AS_ROOT));
    expect(await install("alice")).toEqual({ added: true });
    expect(await install("alice")).toEqual({ added: false });
    expect(await install("root")).toEqual({ added: true });
    expect(shell.authorizedKeys.get("alice")).toEqual([USER_KEY_LINE]);
    expect(shell.authorizedKeys.get("root")).toEqual([USER_KEY_LINE]);
    expect(shell.files.get("/home/alice/.ssh/authorized_keys")).toBe(`${USER_KEY_LINE}\n`);
    for (const account of ["alice", "root"]) {
      expect(await login(target(), account, { privateKey: USER_KEY.privateKey })).toMatchObject({
        accepted: true,
      });
    }
    // Another key is still refused.
    expect(await login(target(), "alice", { privateKey: generateClientKey().privateKey })).toEqual({
      accepted: false,
    });
    const error = await failure(install("nobody-here"));
    expect(error.message).toContain("no account nobody-here on this host");
  });

  it("runs the commands through sudo -n as a real host would", async () => {
    const asLaas = { loginUser: "laas", timeoutSeconds: 10 };
    const password = generatePassword();
    await onHost((host) => setPassword(host, "root", password, asLaas));
    expect(lab.shell(name).passwords.get("root")).toBe(password.reveal());
    expect(lab.hostCommands(name).at(-1)).toEqual(setPasswordArgv("laas"));
  });

  it("forgets passwords and keys when the host is imaged again", async () => {
    const password = lab.shell(name).passwords.get("root");
    expect(password).toBeDefined();
    lab.reimage(name);
    await lab.whenUp(name);
    const shell = lab.shell(name);
    expect(shell.passwords.size).toBe(0);
    expect(shell.authorizedKeys.size).toBe(0);
    expect(shell.accounts.has("alice")).toBe(false);
    expect(await login(target(), "root", { password: password ?? "" })).toEqual({
      accepted: false,
    });
    expect(await login(target(), "root", { privateKey: USER_KEY.privateKey })).toEqual({
      accepted: false,
    });
  });
});
