/**
 * One SSH login with ssh2, host key checked before any credential is offered: the key the server
 * presents must match the expected fingerprint (pinned in config, or recorded after the host's
 * last imaging), or, when there is no expectation yet, it is accepted and reported so the caller
 * can record it. Failures come back as the project's error classes: a wrong host key or a
 * refused login is an AuthError, an endpoint that cannot be reached (yet) a TransientError.
 */
import type { Duplex } from "node:stream";
import type { Client, ConnectConfig } from "ssh2";
import ssh2 from "ssh2";
import {
  AuthError,
  ConfigError,
  errorMessage,
  ProtocolError,
  TransientError,
  UnreachableError,
} from "../../errors";
import type { Logger } from "../../log";
import type { Secret } from "../../secret";
import { fingerprintSha256, normalizeFingerprint } from "./host-key";

export interface SshLogin {
  /** Names the endpoint in messages, e.g. "relay 10.0.0.1:22" or "pod1 (10.0.1.5:22)". */
  label: string;
  host: string;
  port: number;
  user: string;
  key: Secret;
  /** Canonical SHA256 fingerprint the server must present; null accepts and reports it. */
  expectedHostKey: string | null;
  /** Where the expectation comes from, for the refusal message ("the pinned relay host_key"). */
  expectedSource: string;
  /** Seconds allowed to connect, verify the host key and log in. */
  timeoutSeconds: number;
  /** Speak SSH over this stream (a connection forwarded through another host) instead of TCP. */
  sock?: Duplex;
}

export interface SshConnection {
  readonly client: Client;
  /** Fingerprint of the host key the server presented and that was accepted. */
  readonly hostKey: string;
  /** The error that ended the connection after login, if it ended that way. */
  readonly lostWith: Error | null;
  readonly closed: boolean;
  /** False once the connection was lost, ended or closed after login: nothing more goes over it. */
  readonly alive: boolean;
  /**
   * Calls `listener` once the connection is lost or closed after login (at once if it is
   * already): what a command waits on besides its own channel, whose close may never come (a
   * forwarded connection whose far end went away is only half-closed by the relay's sshd).
   * Answers the function that removes the listener.
   */
  onLost(listener: (cause: Error) => void): () => void;
  /** Ends the connection and resolves once it is closed (forcibly after a short grace). */
  end(): Promise<void>;
}

/** Keepalives find a connection that died silently during a long command. */
const KEEPALIVE_INTERVAL_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 4;
/** How long a polite disconnect may take before the socket is cut. */
const END_GRACE_MS = 2_000;

/**
 * The canonical form of a configured or recorded fingerprint. Fails closed: a value that is not
 * a SHA256 fingerprint must never turn into "accept any key".
 */
export function requireFingerprint(value: string, what: string): string {
  const fingerprint = normalizeFingerprint(value);
  if (fingerprint === null) {
    throw new ConfigError(
      `${what} is not an OpenSSH SHA256 fingerprint ("SHA256:" and 43 base64 characters, ` +
        `as ssh-keygen -lf prints it): ${JSON.stringify(value)}`,
    );
  }
  return fingerprint;
}

/** Connects and logs in; settles once, and never leaves a half-open connection behind. */
export function connectPinned(login: SshLogin, logger: Logger): Promise<SshConnection> {
  const client = new ssh2.Client();
  let presented: string | null = null;
  let keyRefused = false;
  let lostWith: Error | null = null;
  let closed = false;
  let ended = false;
  /** Our own end(): the other side's answering FIN is no loss. */
  let ending = false;
  let lostCause: Error | null = null;
  const lostListeners = new Set<(cause: Error) => void>();
  const markLost = (cause: Error): void => {
    if (lostCause !== null) return;
    lostCause = cause;
    for (const listener of [...lostListeners]) listener(cause);
    lostListeners.clear();
  };
  const onLost = (listener: (cause: Error) => void): (() => void) => {
    if (lostCause !== null) {
      listener(lostCause);
      return () => undefined;
    }
    lostListeners.add(listener);
    return () => lostListeners.delete(listener);
  };
  const whenClosed = new Promise<void>((resolve) => client.once("close", () => resolve()));
  client.once("close", () => {
    closed = true;
    markLost(lostWith ?? new Error("the connection closed"));
  });
  // The far end finished the connection (TCP FIN, or the relay's EOF on a forwarded one): ssh2
  // stops reading, but a forwarded connection is not closed until the relay says so, which its
  // sshd may never do. Nothing more can come, so it is ended here.
  client.on("end", () => {
    if (ended) return;
    ended = true;
    if (!ending) lostWith ??= new Error("the connection was ended by the other side");
    markLost(lostWith ?? new Error("the connection was ended"));
    if (!closed) client.destroy();
  });

  const end = async (): Promise<void> => {
    if (closed) return;
    // Ended by the other side: already destroyed, there is nobody to say goodbye to.
    if (ended) return;
    ending = true;
    client.end();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, END_GRACE_MS);
    });
    await Promise.race([whenClosed, grace]);
    clearTimeout(timer);
    if (!closed) client.destroy();
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      client.destroy();
      reject(error);
    };
    const failure = (error: Error | null): Error => {
      if (keyRefused) return hostKeyMismatch(login, presented);
      if (error === null) {
        return new UnreachableError(
          `SSH connection to ${login.label} closed before the login completed`,
          "closed before the login completed",
        );
      }
      return classifySshError(error, login);
    };

    client.on("ready", () => {
      if (settled) return;
      settled = true;
      if (presented === null) {
        // ssh2 always verifies before "ready"; never report a login without a key to record.
        client.destroy();
        reject(new ProtocolError(`SSH login to ${login.label} completed without a host key`));
        return;
      }
      const hostKey = presented;
      resolve({
        client,
        hostKey,
        get lostWith(): Error | null {
          return lostWith;
        },
        get closed(): boolean {
          return closed;
        },
        get alive(): boolean {
          return !closed && !ended && !ending && lostWith === null;
        },
        onLost,
        end,
      });
    });
    client.on("error", (error: Error) => {
      if (!settled) {
        fail(failure(error));
        return;
      }
      // After login the connection is used by commands, which see their channels close; the
      // cause is kept for their messages. Without this listener ssh2's error would be thrown.
      lostWith = error;
      markLost(error);
      logger.warn({ endpoint: login.label, err: errorMessage(error) }, "ssh connection lost");
    });
    client.on("close", () => fail(failure(null)));

    const config: ConnectConfig = {
      host: login.host,
      port: login.port,
      username: login.user,
      privateKey: login.key.reveal(),
      readyTimeout: login.timeoutSeconds * 1000,
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      // Only the key: no agent, no password, no keyboard-interactive prompts.
      tryKeyboard: false,
      // Runs during key exchange, before user authentication: a wrong server never sees a login.
      hostVerifier: (keyBlob: Buffer): boolean => {
        presented = fingerprintSha256(keyBlob);
        if (login.expectedHostKey === null || login.expectedHostKey === presented) return true;
        keyRefused = true;
        return false;
      },
    };
    if (login.sock) config.sock = login.sock;
    try {
      client.connect(config);
      // No Nagle: every small SSH packet would otherwise wait for the peer's delayed ACK (about
      // 40 ms per command). A forwarded connection (sock) rides on the relay's socket, set so.
      client.setNoDelay(true);
    } catch (error) {
      // ssh2 throws synchronously for an unreadable key; its message never quotes the key.
      fail(
        new ConfigError(
          `SSH key (${login.key.source}) for ${login.label} cannot be used: ${errorMessage(error)}`,
        ),
      );
    }
  });
}

function hostKeyMismatch(login: SshLogin, presented: string | null): AuthError {
  return new AuthError(
    `Host key of ${login.label} does not match ${login.expectedSource}: expected ` +
      `${login.expectedHostKey}, presented ${presented}; refusing to log in. If the host was ` +
      "reinstalled, update the expected key once the new one is confirmed.",
  );
}

/** ssh2 marks each error with the stage that produced it (`level`); map that to our classes. */
export function classifySshError(error: Error, login: Pick<SshLogin, "label" | "user">): Error {
  const level = (error as Error & { level?: string }).level;
  const code = (error as NodeJS.ErrnoException).code;
  switch (level) {
    case "client-authentication":
      return new AuthError(
        `SSH login to ${login.label} as ${login.user} was refused: ${error.message}`,
      );
    case "client-timeout":
      return new UnreachableError(
        `SSH to ${login.label} timed out: ${error.message}`,
        `no answer: ${error.message}`,
      );
    case "client-socket":
    case "client-dns": {
      const reason = code === "ECONNREFUSED" ? "connection refused" : error.message;
      return new UnreachableError(`SSH to ${login.label} failed: ${reason}`, reason);
    }
    case "protocol":
      // A host still booting may accept TCP and drop it before sshd answers.
      if (error.message.includes("before handshake")) {
        return new UnreachableError(
          `SSH to ${login.label} failed: ${error.message}`,
          error.message,
        );
      }
      return new ProtocolError(`SSH with ${login.label} failed: ${error.message}`);
    case "handshake":
      return new ProtocolError(`SSH handshake with ${login.label} failed: ${error.message}`);
    default:
      return new TransientError(`SSH to ${login.label} failed: ${error.message}`);
  }
}
