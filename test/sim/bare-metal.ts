/**
 * Simulated bare-metal hosts that answer SSH like the real ones do for power control: each host
 * listens on its own loopback address (127.0.0.0/8 is all local on Linux) and one shared port,
 * as the inventory has a single power port; each has its own ed25519 host key; only public-key
 * login with the lab's key is accepted; `reboot` answers exit 0, the connection drops, the host
 * stops listening (connections refused), and after a boot delay it network-boots (onReboot, to
 * which the FOG simulator reacts); later it answers SSH again. Reimaging gives a new host key.
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type Server as NetServer, type Socket } from "node:net";
import type { AuthContext, Connection, ParsedKey, ServerChannel, Server as SshServer } from "ssh2";
import ssh2 from "ssh2";
import { fingerprintOfPublicKey } from "../../lib/adapters/ssh/host-key";

export interface SimHostSpec {
  name: string;
  /** Loopback address the host's sshd listens on, e.g. 127.0.1.11. */
  address: string;
  /** `reboot` fails with this status and stderr instead of rebooting (e.g. a non-root login). */
  rebootFails?: { exitCode: number; stderr: string };
  /** On `reboot`, drop the connection without an exit status (sshd killed by the shutdown). */
  dropOnReboot?: boolean;
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

interface SimHost {
  spec: SimHostSpec;
  hostKey: { private: string; public: string; fingerprint: string };
  /** sshd for the current key; sockets are handed to it, it never listens itself. */
  sshd: SshServer;
  listener: NetServer | null;
  sockets: Set<Socket>;
  waiters: (() => void)[];
}

const ATTEMPTS_TO_SHARE_A_PORT = 5;

export async function startBareMetalLab(options: BareMetalLabOptions): Promise<BareMetalLab> {
  const parsedKey = ssh2.utils.parseKey(options.authorizedKey);
  if (parsedKey instanceof Error) throw new Error(`authorizedKey: ${parsedKey.message}`);
  const authorized: ParsedKey = parsedKey;
  const authorizedBlob = authorized.getPublicSSH();
  const user = options.user ?? "root";
  const bootDelayMs = options.bootDelayMs ?? 20;
  const upDelayMs = options.upDelayMs ?? 50;
  const reboots: RebootRecord[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const hosts = new Map<string, SimHost>();
  for (const spec of options.hosts) {
    if (hosts.has(spec.name)) throw new Error(`duplicate simulated host ${spec.name}`);
    const hostKey = newHostKey();
    const sshd = makeSshd(spec.name, hostKey.private);
    hosts.set(spec.name, { spec, hostKey, sshd, listener: null, sockets: new Set(), waiters: [] });
  }

  function later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) action();
    }, ms);
    timers.add(timer);
  }

  function makeSshd(name: string, privateHostKey: string): SshServer {
    return new ssh2.Server({ hostKeys: [privateHostKey] }, (connection) =>
      serveConnection(get(name), connection),
    );
  }

  function serveConnection(host: SimHost, connection: Connection): void {
    // A client that vanishes mid-handshake must not crash the lab.
    connection.on("error", () => {});
    connection.on("authentication", (ctx) => authenticate(ctx));
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

  /** Public key only, and only the authorized one: algorithm, key bytes and signature. */
  function authenticate(ctx: AuthContext): void {
    if (ctx.method !== "publickey") {
      ctx.reject(["publickey"]);
      return;
    }
    const offered = ctx.key;
    const sameKey =
      ctx.username === user &&
      offered.algo === authorized.type &&
      offered.data.length === authorizedBlob.length &&
      timingSafeEqual(offered.data, authorizedBlob);
    // Without a signature the client only asks whether the key would do (ssh2 then answers
    // PK_OK); with one, the signature over the session data must verify.
    const signed =
      ctx.signature === undefined ||
      (ctx.blob !== undefined && authorized.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true);
    if (sameKey && signed) ctx.accept();
    else ctx.reject(["publickey"]);
  }

  function runCommand(host: SimHost, channel: ServerChannel, command: string): void {
    if (command.trim() !== "reboot") {
      const name = command.trim().split(/\s+/)[0] ?? "";
      channel.stderr.write(`bash: ${name}: command not found\n`);
      channel.exit(127);
      channel.end();
      return;
    }
    const failure = host.spec.rebootFails;
    if (failure) {
      channel.stderr.write(failure.stderr);
      channel.exit(failure.exitCode);
      channel.end();
      return;
    }
    reboots.push({ host: host.spec.name, at: new Date() });
    if (!host.spec.dropOnReboot) {
      channel.exit(0);
      channel.end();
    }
    goDown(host);
  }

  /** The host goes down: stop listening, cut live sessions, then network-boot and come back. */
  function goDown(host: SimHost): void {
    host.listener?.close();
    host.listener = null;
    // Let the exit status and channel close reach the client before the sockets are cut, as
    // `reboot` returns before init gets round to killing sshd.
    later(5, () => {
      for (const socket of host.sockets) socket.destroy();
    });
    later(bootDelayMs, () => {
      options.onReboot(host.spec.name);
      later(upDelayMs, () => {
        listen(host, port).catch(() => {
          // The port was taken while the host was down; it stays down, as a host whose sshd
          // cannot bind would.
        });
      });
    });
  }

  function listen(host: SimHost, onPort: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const listener = createServer((socket) => {
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
      host.hostKey = newHostKey();
      host.sshd = makeSshd(name, host.hostKey.private);
      return host.hostKey.fingerprint;
    },
    isUp: (name) => get(name).listener !== null,
    whenUp(name) {
      const host = get(name);
      if (host.listener !== null) return Promise.resolve();
      return new Promise((resolve) => host.waiters.push(resolve));
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await stopAll();
    },
  };
}

function newHostKey(): SimHost["hostKey"] {
  const pair = generateEd25519();
  return {
    private: pair.private,
    public: pair.public,
    fingerprint: fingerprintOfPublicKey(pair.public),
  };
}
