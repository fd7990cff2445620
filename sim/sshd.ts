/**
 * A real OpenSSH sshd for tests: Debian's openssh-server (installed when missing), run in the
 * foreground as root on a loopback address and a free port, with its own ed25519 host key and
 * an authorized_keys file in a temp dir. Keys are made by ssh-keygen, so the fingerprints the
 * tests compare against come from OpenSSH itself, not from the code under test.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ensurePrograms } from "./debian-packages";

const SSHD = "/usr/sbin/sshd";
const run = promisify(execFile);

export interface SshdOptions {
  /** Loopback address to listen on (default 127.0.0.1); all of 127.0.0.0/8 is local on Linux. */
  address?: string;
  /** Port to listen on; by default a free one is picked. */
  port?: number;
  /** OpenSSH public key lines allowed to log in as root. */
  authorizedKeys: string[];
  /** Whether the server forwards connections for its clients (default true, as a relay must). */
  allowTcpForwarding?: boolean;
  /**
   * Also accept password logins (default false: public keys only). Passwords are checked against
   * the system's shadow file, as sshd without PAM does; root still needs a key.
   */
  allowPasswords?: boolean;
  /**
   * Also read each user's `~/.ssh/authorized_keys` (`%h/.ssh/authorized_keys`) after the temp
   * file (default false: the temp file only).
   */
  userAuthorizedKeys?: boolean;
  /**
   * Run inside this network namespace (`ip netns exec`), listening on `address` there. The port
   * defaults to 22: a fresh namespace has nothing listening, and no free-port probe reaches it.
   */
  netns?: string;
  /** More sshd_config lines (`MaxSessions 1`, …), after the helper's own. */
  extraConfig?: string[];
}

export interface RunningSshd {
  readonly address: string;
  readonly port: number;
  readonly pid: number;
  /** As `ssh-keygen -lf` prints it: SHA256:… */
  readonly hostKeyFingerprint: string;
  /** The host key as an OpenSSH public key line. */
  readonly hostPublicKey: string;
  /** What sshd logged so far (it runs with -e, LogLevel VERBOSE). */
  log(): string;
  /** Per-connection sshd processes still running: one per open client connection. */
  connectionProcesses(): Promise<number[]>;
  stop(): Promise<void>;
}

export interface SshKeyPair {
  /** OpenSSH-format private key, as ssh2 reads it. */
  privateKey: string;
  /** OpenSSH public key line, for authorized_keys. */
  publicKey: string;
  fingerprint: string;
}

let installing: Promise<void> | null = null;

/** Installs openssh-server when sshd is missing. */
export function ensureOpenSshServer(): Promise<void> {
  installing ??= ensurePrograms([SSHD], ["openssh-server"]);
  return installing;
}

async function fingerprintOf(publicKeyFile: string): Promise<string> {
  const { stdout } = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", publicKeyFile]);
  const fingerprint = stdout.split(" ")[1];
  if (!fingerprint?.startsWith("SHA256:")) throw new Error(`ssh-keygen -lf answered: ${stdout}`);
  return fingerprint;
}

async function keygen(file: string, comment: string): Promise<void> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
}

/** A fresh ed25519 client key pair made by ssh-keygen. */
export async function generateSshKey(comment = "laas-test"): Promise<SshKeyPair> {
  await ensureOpenSshServer();
  const dir = await mkdtemp(join(tmpdir(), "laas-key-"));
  try {
    const file = join(dir, "id_ed25519");
    await keygen(file, comment);
    return {
      privateKey: await readFile(file, "utf8"),
      publicKey: (await readFile(`${file}.pub`, "utf8")).trim(),
      fingerprint: await fingerprintOf(`${file}.pub`),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A port nobody listens on at `address` right now (it may be taken again before use). */
export function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, address, () => {
      const bound = server.address();
      const port = typeof bound === "object" && bound !== null ? bound.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** sshd 9.8 added per-source penalties, which would lock out a test client after failures. */
async function penaltiesSupported(): Promise<boolean> {
  const { stderr } = await run(SSHD, ["-V"]).catch((error: { stderr?: string }) => ({
    stderr: error.stderr ?? "",
  }));
  const match = /OpenSSH_(\d+)\.(\d+)/.exec(stderr);
  if (!match) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 9 || (major === 9 && minor >= 8);
}

function sshdConfig(dir: string, address: string, port: number, options: SshdOptions): string {
  const passwords = options.allowPasswords === true;
  const keyFiles = [join(dir, "authorized_keys")];
  if (options.userAuthorizedKeys === true) keyFiles.push("%h/.ssh/authorized_keys");
  return [
    `ListenAddress ${address}:${port}`,
    `HostKey ${join(dir, "host_key")}`,
    `AuthorizedKeysFile ${keyFiles.join(" ")}`,
    `AuthenticationMethods ${passwords ? "any" : "publickey"}`,
    "PubkeyAuthentication yes",
    `PasswordAuthentication ${passwords ? "yes" : "no"}`,
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    // The temp dir's owner and modes are not what StrictModes wants for a home directory.
    "StrictModes no",
    "UsePAM no",
    "PidFile none",
    `AllowTcpForwarding ${options.allowTcpForwarding === false ? "no" : "yes"}`,
    "X11Forwarding no",
    "AllowAgentForwarding no",
    "PrintMotd no",
    "LogLevel VERBOSE",
    ...(options.extraConfig ?? []),
    "",
  ].join("\n");
}

/** Starts sshd and resolves once it listens; retries with another port if the pick was taken. */
export async function startSshd(options: SshdOptions): Promise<RunningSshd> {
  await ensureOpenSshServer();
  const address = options.address ?? "127.0.0.1";
  const dir = await mkdtemp(join(tmpdir(), "laas-sshd-"));
  const hostKeyFile = join(dir, "host_key");
  await keygen(hostKeyFile, "laas-test-sshd");
  await writeFile(join(dir, "authorized_keys"), `${options.authorizedKeys.join("\n")}\n`, {
    mode: 0o600,
  });
  const extra = (await penaltiesSupported()) ? "PerSourcePenalties no\n" : "";
  // sshd refuses to start without its privilege separation directory.
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });

  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (options.netns ? 22 : await freePort(address));
    const configFile = join(dir, "sshd_config");
    await writeFile(configFile, sshdConfig(dir, address, port, options) + extra);
    try {
      const child = await launch(configFile, address, port, options.netns);
      return await running(child, dir, address, port, hostKeyFile);
    } catch (error) {
      const portTaken =
        error instanceof Error && /bind|Address already in use/i.test(error.message);
      if (!portTaken || options.port !== undefined || attempt >= 5) {
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }
}

interface Launched {
  process: ChildProcess;
  log: () => string;
  exited: Promise<void>;
}

function launch(
  configFile: string,
  address: string,
  port: number,
  netns: string | undefined,
): Promise<Launched> {
  // -D: stay in the foreground (the test owns the process); -e: log to stderr, kept below.
  const argv = ["-D", "-e", "-f", configFile];
  // `ip netns exec` execs sshd in the namespace: the child's pid is sshd's.
  const child = netns
    ? spawn("ip", ["netns", "exec", netns, SSHD, ...argv], { stdio: ["ignore", "ignore", "pipe"] })
    : spawn(SSHD, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`sshd did not start listening on ${address}:${port} within 10s:\n${log}`));
    }, 10_000);
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      log += chunk;
      if (log.includes(`Server listening on ${address} port ${port}`)) {
        clearTimeout(timer);
        resolve({ process: child, log: () => log, exited });
      }
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited (${code ?? signal}) before listening:\n${log}`));
    });
  });
}

async function running(
  launched: Launched,
  dir: string,
  address: string,
  port: number,
  hostKeyFile: string,
): Promise<RunningSshd> {
  const pid = launched.process.pid;
  if (pid === undefined) throw new Error("sshd has no pid");
  // If the test process dies without stopping it, take sshd along rather than leak it.
  const killOnExit = (): void => {
    launched.process.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const connectionProcesses = () => childrenOf(pid);
  return {
    address,
    port,
    pid,
    hostKeyFingerprint: await fingerprintOf(`${hostKeyFile}.pub`),
    hostPublicKey: (await readFile(`${hostKeyFile}.pub`, "utf8")).trim(),
    log: launched.log,
    connectionProcesses,
    async stop() {
      process.off("exit", killOnExit);
      const sessions = await connectionProcesses();
      launched.process.kill("SIGTERM");
      for (const session of sessions) {
        try {
          process.kill(session, "SIGTERM");
        } catch {
          // Already gone.
        }
      }
      const killed = setTimeout(() => launched.process.kill("SIGKILL"), 5_000);
      await launched.exited;
      clearTimeout(killed);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Pids whose parent is `pid`, from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, "utf8").catch(() => "");
    if (new RegExp(`^PPid:\\s+${pid}$`, "m").test(status)) children.push(Number(entry));
  }
  return children;
}
