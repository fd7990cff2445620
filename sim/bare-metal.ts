/**
 * Simulated bare-metal hosts that answer SSH like the real ones do: each host listens on its own
 * loopback address (127.0.0.0/8 is all local on Linux) and one shared port, as the inventory has
 * a single power port; each has its own ed25519 host key; public-key login with the lab's key is
 * accepted (and the credentials the product hands over, below). `reboot` answers exit 0, the connection drops, the host stops listening
 * (connections refused), and after a boot delay it network-boots (onReboot, to which the FOG
 * simulator reacts); later it answers SSH again.
 *
 * When FOG finishes writing an image (reimage), the host boots the new system: it is down for a
 * boot delay, asks DHCP for its address (onBoot) on the way, and comes up with a new host key and
 * an empty disk. From then on it answers the commands the product runs after imaging (libvirt,
 * files, the detached installer, passwords and authorized keys: see host-shell.ts). Before its
 * first imaging only `reboot` and `true` are known: what was on the disk before is nothing the
 * product may rely on. Once the product has set an account's password (chpasswd) or installed a
 * key for it, the host also lets that account in with it, as the handed-over pod would.
 *
 * Simplification: between the network boot and the end of imaging the host answers SSH with its
 * old system, as if FOG's client were not running. A provision restarted mid-imaging reboots the
 * host again, which a host sitting in FOG's client would not allow.
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import type {
  AuthContext,
  Connection,
  ParsedKey,
  PublicKeyAuthContext,
  ServerChannel,
  Server as SshServer,
} from "ssh2";
import ssh2 from "ssh2";
import { fingerprintOfPublicKey } from "../lib/adapters/ssh/host-key";
import { commandNotFound, HostShell, parseQuotedCommand, type ShellResult } from "./host-shell";

export interface SimHostSpec {
  name: string;
  /** Loopback address the host's sshd listens on, e.g. 127.0.1.11. */
  address: string;
  /** `reboot` fails with this status and stderr instead of rebooting (e.g. a non-root login). */
  rebootFails?: { exitCode: number; stderr: string };
  /** On `reboot`, drop the connection without an exit status (sshd killed by the shutdown). */
  dropOnReboot?: boolean;
  /** The installer started on the host ends with status 1 and an error in its log. */
  installerFails?: boolean;
}

export interface BareMetalLabOptions {
  hosts: SimHostSpec[];
  /** Port every host listens on; by default a free one is picked once and shared. */
  port?: number;
  /** The only key allowed to log in: an OpenSSH public key line. */
  authorizedKey: string;
  /** The only user allowed to log in (default "root": `reboot` needs it). */
  user?: string;
  /** Called when a rebooted host starts network-booting (into FOG's client). */
  onReboot: (hostName: string) => void;
  /** From `reboot` to the network boot (default 20 ms). */
  bootDelayMs?: number;
  /** From the network boot until sshd answers again (default 50 ms). */
  upDelayMs?: number;
  /**
   * Called when a host's system boots and asks DHCP for its address (after a reboot, and
   * half-way through the boot after imaging).
   */
  onBoot?: (hostName: string) => void;
  /** From the end of imaging until the new system answers SSH (default 300 ms). */
  imagedBootMs?: number;
  /** From the detached installer's launch to its status file (default 3000 ms). */
  installerMs?: number;
  /**
   * Up to this many milliseconds more for each boot after imaging and each installer run, drawn
   * every time (default 0): events then fall at any moment, as in a real lab.
   */
  jitterMs?: number;
  /** How long `curl` takes to fetch a file on a host (default 20 ms). */
  fetchMs?: number;
  /** Called as a host's freshly imaged system answers SSH (its sshd listens). */
  onImagedUp?: (hostName: string) => void;
  /** Called as the installer started on a host writes its exit status. */
  onInstallerDone?: (hostName: string) => void;
}

export interface RebootRecord {
  host: string;
  at: Date;
}

export interface BareMetalLab {
  readonly port: number;
  /** Every `reboot` that was carried out, oldest first. */
  readonly reboots: readonly RebootRecord[];
  /** The host key fingerprint as OpenSSH prints it (SHA256:…). */
  hostKeyFingerprint(name: string): string;
  /** The host key as an OpenSSH public key line. */
  hostPublicKey(name: string): string;
  /** What reimaging does: the host gets a new key (answers its fingerprint); live at once. */
  regenerateHostKey(name: string): string;
  /**
   * FOG finished writing an image: the host goes down, boots the new system (new host key, empty
   * disk, DHCP on the way) and answers SSH after imagedBootMs. Answers the new fingerprint.
   */
  reimage(name: string): string;
  /** Whether the host has been imaged since the lab started (it then runs the product's commands). */
  isImaged(name: string): boolean;
  /** Every command the host was asked to run, as argv arrays, oldest first (kept across imaging). */
  hostCommands(name: string): string[][];
  /** Calls `listener` as each command reaches a host, before the host runs it. */
  onCommand(listener: (host: string, argv: readonly string[]) => void): void;
  /** The host's emulated system (files, libvirt networks and domains, detached installers). */
  shell(name: string): HostShell;
  /** Whether sshd on the host accepts connections. */
  isUp(name: string): boolean;
  /** Resolves once the host answers SSH (at once when it does already). */
  whenUp(name: string): Promise<void>;
  close(): Promise<void>;
}

/** An ed25519 key pair in OpenSSH formats, usable by ssh2's Client (private) and authorized_keys. */
export function generateClientKey(): { privateKey: string; publicKey: string } {
  const pair = generateEd25519();
  return { privateKey: pair.private, publicKey: pair.public };
}

/**
 * ssh2's keygen strips a leading zero byte from an ed25519 public key (mscdex/ssh2#1390, about
 * one key in 256), which leaves a pair its own parseKey rejects. Draw again until both halves
 * parse.
 */
function generateEd25519(): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519");
    const usable =
      !(ssh2.utils.parseKey(pair.public) instanceof Error) &&
      !(ssh2.utils.parseKey(pair.private) instanceof Error);
    if (usable) return pair;
  }
  throw new Error("could not generate a usable ed25519 key pair");
}

export interface SimHostKey {
  private: string;
  public: string;
  /** SHA256:… as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** A new ed25519 host key for a simulated SSH server. */
export function generateHostKey(): SimHostKey {
  const pair = generateEd25519();
  return {
    private: pair.private,
    public: pair.public,
    fingerprint: fingerprintOfPublicKey(pair.public),
  };
}

/**
 * sshd with `AuthenticationMethods publickey` and one authorized key for one user: algorithm,
 * key bytes and signature must all match.
 */
export function publicKeyAuthenticator(
  user: string,
  authorizedKey: string,
): (ctx: AuthContext) => void {
  const authorized = parseAuthorizedKey(authorizedKey);
  return (ctx) => {
    if (ctx.method === "publickey" && ctx.username === user && offersKey(ctx, authorized)) {
      ctx.accept();
    } else {
      ctx.reject(["publickey"]);
    }
  };
}

function parseAuthorizedKey(line: string): ParsedKey {
  const parsed = ssh2.utils.parseKey(line);
  if (parsed instanceof Error) throw new Error(`authorizedKey: ${parsed.message}`);
  return parsed;
}

/**
 * Whether the client offers `authorized`: algorithm and key bytes match, and the signature, if
 * sent, verifies. Without a signature the client only asks whether the key would do (ssh2 then
 * answers PK_OK); with one, the signature over the session data must verify.
 */
function offersKey(ctx: PublicKeyAuthContext, authorized: ParsedKey): boolean {
  const offered = ctx.key;
  const blob = authorized.getPublicSSH();
  const sameKey =
    offered.algo === authorized.type &&
    offered.data.length === blob.length &&
    timingSafeEqual(offered.data, blob);
  const signed =
    ctx.signature === undefined ||
    (ctx.blob !== undefined && authorized.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true);
  return sameKey && signed;
}

/**
 * Whether what the product handed over on the host lets this login in: the password chpasswd set
 * last for the account, or a key line in the account's authorized_keys.
 */
function handedOverLogin(shell: HostShell, ctx: AuthContext): boolean {
  if (ctx.method === "password") {
    const expected = shell.passwords.get(ctx.username);
    if (expected === undefined) return false;
    const [given, wanted] = [Buffer.from(ctx.password), Buffer.from(expected)];
    return given.length === wanted.length && timingSafeEqual(given, wanted);
  }
  if (ctx.method !== "publickey") return false;
  return (shell.authorizedKeys.get(ctx.username) ?? []).some((line) => {
    const key = ssh2.utils.parseKey(line);
    return !(key instanceof Error) && offersKey(ctx, key);
  });
}

interface SimHost {
  spec: SimHostSpec;
  hostKey: SimHostKey;
  /** sshd for the current key; sockets are handed to it, it never listens itself. */
  sshd: SshServer;
  listener: NetServer | null;
  sockets: Set<Socket>;
  waiters: (() => void)[];
  shell: HostShell;
  imaged: boolean;
  /** Imaged since it last came up: its next start is the new system's first boot. */
  freshlyImaged: boolean;
  commands: string[][];
  /** Bumped at every shutdown: timers of an earlier boot find it changed and do nothing. */
  boot: number;
}

const ATTEMPTS_TO_SHARE_A_PORT = 5;

export async function startBareMetalLab(options: BareMetalLabOptions): Promise<BareMetalLab> {
  const labUser = options.user ?? "root";
  const labKey = parseAuthorizedKey(options.authorizedKey);
  const bootDelayMs = options.bootDelayMs ?? 20;
  const upDelayMs = options.upDelayMs ?? 50;
  const imagedBootMs = options.imagedBootMs ?? 300;
  const reboots: RebootRecord[] = [];
  const commandListeners: ((host: string, argv: readonly string[]) => void)[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const hosts = new Map<string, SimHost>();
  for (const spec of options.hosts) {
    if (hosts.has(spec.name)) throw new Error(`duplicate simulated host ${spec.name}`);
    const hostKey = generateHostKey();
    const sshd = makeSshd(spec.name, hostKey.private);
    const shell = new HostShell({
      name: spec.name,
      ...(options.installerMs !== undefined ? { installerMs: options.installerMs } : {}),
      ...(options.jitterMs !== undefined ? { installerJitterMs: options.jitterMs } : {}),
      ...(options.fetchMs !== undefined ? { fetchMs: options.fetchMs } : {}),
      ...(spec.installerFails !== undefined ? { installerFails: spec.installerFails } : {}),
      onInstallerDone: () => options.onInstallerDone?.(spec.name),
    });
    hosts.set(spec.name, {
      spec,
      hostKey,
      sshd,
      listener: null,
      sockets: new Set(),
      waiters: [],
      shell,
      imaged: false,
      freshlyImaged: false,
      commands: [],
      boot: 0,
    });
  }

  function later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) action();
    }, ms);
    timers.add(timer);
  }

  /** Runs `action` later unless the host has gone down again in the meantime. */
  function laterInBoot(host: SimHost, ms: number, action: () => void): void {
    const boot = host.boot;
    later(ms, () => {
      if (host.boot === boot) action();
    });
  }

  function makeSshd(name: string, privateHostKey: string): SshServer {
    return new ssh2.Server({ hostKeys: [privateHostKey] }, (connection) =>
      serveConnection(get(name), connection),
    );
  }

  function serveConnection(host: SimHost, connection: Connection): void {
    // A client that vanishes mid-handshake must not crash the lab.
    connection.on("error", () => {});
    connection.on("authentication", (ctx) => {
      const labLogin =
        ctx.method === "publickey" && ctx.username === labUser && offersKey(ctx, labKey);
      if (labLogin || (host.imaged && handedOverLogin(host.shell, ctx))) {
        ctx.accept();
        return;
      }
      // Passwords are offered as a way in once one has been set, as sshd lists its methods.
      const passwords = host.imaged && host.shell.passwords.size > 0;
      ctx.reject(passwords ? ["publickey", "password"] : ["publickey"]);
    });
    connection.on("ready", () => {
      connection.on("session", (accept) => {
        const session = accept();
        session.on("pty", (_accept, reject) => reject());
        session.on("shell", (_accept, reject) => reject());
        session.on("exec", (acceptExec, _reject, info) => {
          runCommand(host, acceptExec(), info.command);
        });
      });
    });
  }

  function runCommand(host: SimHost, channel: ServerChannel, line: string): void {
    // Read from the start, so that a command reading its input finds all of it.
    const stdin = collectInput(channel);
    // Power control without the relay sends the bare word; the relay quotes every word.
    const argv = line.trim() === "reboot" ? ["reboot"] : parseQuotedCommand(line);
    if (argv === null) {
      answer(channel, commandNotFound(line.trim().split(/\s+/)[0] ?? ""));
      return;
    }
    host.commands.push(argv);
    for (const listener of commandListeners) listener(host.spec.name, argv);
    if (argv.length === 1 && argv[0] === "reboot") {
      reboot(host, channel);
      return;
    }
    if (!host.imaged && argv[0] !== "true") {
      answer(channel, commandNotFound(argv[0] ?? ""));
      return;
    }
    host.shell.run(argv, stdin).then(
      (result) => answer(channel, result),
      (error: unknown) =>
        answer(channel, { exitCode: 1, stdout: "", stderr: `${String(error)}\n` }),
    );
  }

  function reboot(host: SimHost, channel: ServerChannel): void {
    const failure = host.spec.rebootFails;
    if (failure) {
      answer(channel, { exitCode: failure.exitCode, stdout: "", stderr: failure.stderr });
      return;
    }
    reboots.push({ host: host.spec.name, at: new Date() });
    if (!host.spec.dropOnReboot) answer(channel, { exitCode: 0, stdout: "", stderr: "" });
    goDown(host);
  }

  /** The host goes down: stop listening, cut live sessions, then network-boot and come back. */
  function goDown(host: SimHost): void {
    shutDown(host);
    laterInBoot(host, bootDelayMs, () => {
      options.onReboot(host.spec.name);
      laterInBoot(host, upDelayMs, () => {
        options.onBoot?.(host.spec.name);
        comeUp(host);
      });
    });
  }

  /** The end of imaging: the new system boots, with a new host key and nothing on its disk. */
  function reimage(host: SimHost): string {
    shutDown(host);
    host.shell.reset();
    host.imaged = true;
    host.hostKey = generateHostKey();
    host.sshd = makeSshd(host.spec.name, host.hostKey.private);
    // DHCP comes early in the boot, sshd late: the address is known before the host answers.
    const bootMs = imagedBootMs + Math.random() * (options.jitterMs ?? 0);
    host.freshlyImaged = true;
    laterInBoot(host, bootMs / 2, () => options.onBoot?.(host.spec.name));
    laterInBoot(host, bootMs, () => comeUp(host));
    return host.hostKey.fingerprint;
  }

  function shutDown(host: SimHost): void {
    host.boot += 1;
    host.listener?.close();
    host.listener = null;
    // Let the exit status and channel close reach the client before the sockets are cut, as
    // `reboot` returns before init gets round to killing sshd.
    const sockets = [...host.sockets];
    later(5, () => {
      for (const socket of sockets) socket.destroy();
    });
  }

  function comeUp(host: SimHost): void {
    if (host.listener !== null) return;
    listen(host, port).catch(() => {
      // The port was taken while the host was down; it stays down, as a host whose sshd
      // cannot bind would.
    });
  }

  function listen(host: SimHost, onPort: number): Promise<number> {
    return new Promise((resolve, reject) => {
      // No Nagle: each small SSH packet would otherwise wait for the peer's delayed ACK (40 ms).
      const listener = createServer({ noDelay: true }, (socket) => {
        host.sockets.add(socket);
        socket.on("close", () => host.sockets.delete(socket));
        socket.on("error", () => {});
        host.sshd.injectSocket(socket);
      });
      listener.once("error", reject);
      listener.listen(onPort, host.spec.address, () => {
        listener.off("error", reject);
        host.listener = listener;
        for (const wake of host.waiters.splice(0)) wake();
        if (host.freshlyImaged) options.onImagedUp?.(host.spec.name);
        host.freshlyImaged = false;
        const address = listener.address();
        resolve(typeof address === "object" && address !== null ? address.port : onPort);
      });
    });
  }

  async function stopAll(): Promise<void> {
    for (const host of hosts.values()) {
      for (const socket of host.sockets) socket.destroy();
      const listener = host.listener;
      host.listener = null;
      if (listener) await new Promise<void>((resolve) => listener.close(() => resolve()));
    }
  }

  /** Binds every host on one port: the first picks it (unless given), the others follow. */
  async function listenAll(): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        let shared = options.port ?? 0;
        for (const host of hosts.values()) shared = await listen(host, shared);
        return shared;
      } catch (error) {
        await stopAll();
        // A random port free on the first address may be taken on another; pick again.
        if (options.port !== undefined || attempt >= ATTEMPTS_TO_SHARE_A_PORT) throw error;
      }
    }
  }

  const port = await listenAll();

  function get(name: string): SimHost {
    const host = hosts.get(name);
    if (!host) throw new Error(`no simulated host ${name}`);
    return host;
  }

  return {
    port,
    reboots,
    hostKeyFingerprint: (name) => get(name).hostKey.fingerprint,
    hostPublicKey: (name) => get(name).hostKey.public,
    regenerateHostKey(name) {
      const host = get(name);
      host.hostKey = generateHostKey();
      host.sshd = makeSshd(name, host.hostKey.private);
      return host.hostKey.fingerprint;
    },
    reimage: (name) => reimage(get(name)),
    isImaged: (name) => get(name).imaged,
    hostCommands: (name) => get(name).commands.map((argv) => [...argv]),
    onCommand: (listener) => {
      commandListeners.push(listener);
    },
    shell: (name) => get(name).shell,
    isUp: (name) => get(name).listener !== null,
    whenUp(name) {
      const host = get(name);
      if (host.listener !== null) return Promise.resolve();
      return new Promise((resolve) => host.waiters.push(resolve));
    },
    async close() {
      closed = true;
      for (const host of hosts.values()) host.shell.close();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await stopAll();
    },
  };
}

/** Everything the client sends, once it has sent EOF (or the channel closed). */
function collectInput(channel: ServerChannel): () => Promise<string> {
  const chunks: Buffer[] = [];
  const input = new Promise<string>((resolve) => {
    const done = () => resolve(Buffer.concat(chunks).toString("utf8"));
    channel.on("data", (chunk: Buffer) => chunks.push(chunk));
    channel.once("end", done);
    channel.once("close", done);
  });
  return () => input;
}

/** Sends a command's output and exit status, unless the client has gone away already. */
function answer(channel: ServerChannel, result: ShellResult): void {
  if (channel.destroyed) return;
  try {
    if (result.stdout) channel.write(result.stdout);
    if (result.stderr) channel.stderr.write(result.stderr);
    channel.exit(result.exitCode);
    channel.end();
  } catch {
    // The connection dropped under the command (the host went down): nobody to tell.
  }
}
