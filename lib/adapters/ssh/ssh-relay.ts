/**
 * The relay port over SSH (ssh2): one login to the lab-side relay, whose host key is pinned in
 * config, and logins to lab hosts over connections the relay forwards (direct-tcpip channels on
 * the same SSH connection, not a second ssh process). Commands are argv arrays, each word
 * single-quoted for the remote shell; every command has a deadline, its exit code is checked and
 * its output goes, line by line, to the caller's sink and the debug log.
 *
 * Failures, and what is retried here (the workflows' Retry comes on top, for steps):
 * - the relay login fails on the network (refused, reset, timed out): nothing ran; the login is
 *   tried again with backoff (`retry`), then a TransientError;
 * - a connection found lost before a command starts: logged in again (a host with the key it
 *   showed at the first login of the session) — the command had not been sent;
 * - the connection lost, or silent past the command's deadline, while a command ran: an
 *   OutcomeUnknownError (it may have run in part). A command marked `idempotent` is run again on a
 *   new login, with backoff and a cap; any other is left to its caller, who knows how to look;
 * - a command's own failure (exit code, signal, its deadline on a live connection), a refused
 *   login or host key: final, never retried.
 */
import type { ClientChannel } from "ssh2";
import type { RelayConfig } from "../../config/types";
import { AuthError, HostIdentityError, TransientError } from "../../errors";
import { neighbourCommand, requireNeighbourMac } from "../../lab/neighbour";
import { requireInLabSubnets } from "../../lab/subnets";
import { type Logger, silentLogger } from "../../log";
import type {
  CommandResult,
  HostLogin,
  HostSession,
  OutputSink,
  Relay,
  RelaySession,
  RemoteCommand,
} from "../../ports/relay";
import { type RetryPolicy, retryTransient } from "../retry";
import { connectPinned, requireFingerprint, type SshConnection, type SshLogin } from "./connect";
import { CommandTimeoutError, runCommand } from "./run-command";
import { quoteShellCommand } from "./shell-quote";

export type { RelayConfig };
/** Where it was defined before run-command.ts: callers import it from here. */
export { CommandTimeoutError };

/**
 * Logins that failed on the network, and idempotent commands whose connection was lost: three
 * attempts, a quarter and half a second apart (jittered), none started after 30 s. Enough for a
 * blip; a longer outage is the workflows' Retry's (steps) or the watcher's next cycle's.
 */
export const DEFAULT_SSH_RETRY: RetryPolicy = {
  retries: 2,
  minDelayMs: 250,
  maxDelayMs: 2_000,
  maxRetryMs: 30_000,
};

export interface SshRelayOptions {
  retry?: RetryPolicy;
}

/**
 * Where the relay may be asked to forward: the lab's subnets, and hosts named in the configs
 * that are not addresses (a DHCP server given by name, with its key pinned).
 */
export interface ForwardTargets {
  labSubnets: readonly string[];
  names: readonly string[];
}

export class SshRelay implements Relay {
  readonly #config: RelayConfig;
  readonly #targets: ForwardTargets;
  readonly #logger: Logger;
  readonly #retry: RetryPolicy;

  constructor(
    config: RelayConfig,
    targets: ForwardTargets,
    logger: Logger = silentLogger,
    options: SshRelayOptions = {},
  ) {
    this.#config = config;
    this.#targets = targets;
    this.#logger = logger;
    this.#retry = options.retry ?? DEFAULT_SSH_RETRY;
  }

  async session<T>(work: (session: RelaySession) => Promise<T>): Promise<T> {
    const config = this.#config;
    const endpoint = `${config.host}:${config.port}`;
    const logger = this.#logger.child({ relay: endpoint });
    const login: SshLogin = {
      label: `relay ${endpoint}`,
      host: config.host,
      port: config.port,
      user: config.user,
      key: config.key,
      // Checked before connecting: a malformed pin must fail closed, and is not retried.
      expectedHostKey: requireFingerprint(config.hostKey, "The relay's pinned host_key"),
      expectedSource: "the relay's pinned host_key",
      timeoutSeconds: config.timeoutSeconds,
    };
    // Nothing has run before the login completes, so a login failed on the network is retried.
    const connect = async (): Promise<SshConnection> => {
      const connection = await retryTransient(() => connectPinned(login, logger), this.#retry, {
        logger,
        what: `SSH login to the relay ${endpoint}`,
        waitingFor: `the relay at ${endpoint}`,
      });
      logger.debug({ user: config.user }, "relay: logged in");
      return connection;
    };
    const session = new SshRelaySession(await connect(), connect, {
      config,
      targets: this.#targets,
      logger,
      retry: this.#retry,
    });
    try {
      return await work(session);
    } finally {
      await session.close();
    }
  }
}

interface SessionSettings {
  config: RelayConfig;
  targets: ForwardTargets;
  logger: Logger;
  retry: RetryPolicy;
}

/**
 * A connection that is replaced by a new login once found lost. Concurrent users of a lost one
 * share the one new login.
 */
class Reconnecting {
  #current: SshConnection;
  #replacing: Promise<SshConnection> | null = null;
  readonly #login: () => Promise<SshConnection>;

  constructor(first: SshConnection, login: () => Promise<SshConnection>) {
    this.#current = first;
    this.#login = login;
  }

  get current(): SshConnection {
    return this.#current;
  }

  /** The connection, or a new one if it was lost (the caller has sent nothing over it yet). */
  live(): Promise<SshConnection> {
    if (this.#current.alive) return Promise.resolve(this.#current);
    this.#replacing ??= (async () => {
      // Ended on the side: a lost connection may take its grace period to close.
      void this.#current.end().catch(() => undefined);
      this.#current = await this.#login();
      return this.#current;
    })().finally(() => {
      this.#replacing = null;
    });
    return this.#replacing;
  }
}

class SshRelaySession implements RelaySession {
  readonly #relay: Reconnecting;
  readonly #config: RelayConfig;
  readonly #targets: ForwardTargets;
  readonly #logger: Logger;
  readonly #retry: RetryPolicy;
  readonly #hosts: SshConnection[] = [];
  #closed = false;

  constructor(
    relay: SshConnection,
    loginAgain: () => Promise<SshConnection>,
    settings: SessionSettings,
  ) {
    this.#config = settings.config;
    this.#targets = settings.targets;
    this.#logger = settings.logger;
    this.#retry = settings.retry;
    this.#relay = new Reconnecting(relay, async () => {
      this.#logger.warn("relay connection lost; logging in again");
      const fresh = await loginAgain();
      if (this.#closed) {
        await fresh.end();
        throw new TransientError("The relay session ended while logging in to the relay again");
      }
      return fresh;
    });
  }

  async onRelay(command: RemoteCommand, sink?: OutputSink): Promise<CommandResult> {
    const where = `the relay (${this.#config.host}:${this.#config.port})`;
    return this.#run(command, () => this.#liveRelay(), sink, where, this.#logger);
  }

  async host(login: HostLogin): Promise<HostSession> {
    this.#open();
    const endpoint = `${login.address}:${login.port}`;
    const label = `${login.hostName} (${endpoint})`;
    const logger = this.#logger.child({ host: login.hostName, endpoint });
    // Checked before anything is opened: a malformed expectation must fail closed.
    const expectedHostKey =
      login.expectedHostKey === null
        ? null
        : requireFingerprint(login.expectedHostKey, `The expected host key of ${login.hostName}`);
    if (!this.#targets.names.includes(login.address)) {
      requireInLabSubnets(
        login.address,
        this.#targets.labSubnets,
        `the address of ${login.hostName}`,
      );
    }
    if (expectedHostKey === null && login.identity.kind === "pinned") {
      throw new HostIdentityError(
        `${login.hostName} has no pinned host key, and relay.host_identity: pinned accepts no ` +
          "other: pin its key (power.host_key in the inventory; dhcp_server_host_key for a DHCP server)",
      );
    }
    if (
      expectedHostKey === null &&
      login.identity.kind === "neighbour" &&
      login.identity.mac === null
    ) {
      throw new HostIdentityError(
        `FOG has no MAC for ${login.hostName}, so the relay's neighbour table cannot show that ` +
          "the machine answering is this host; nothing was sent to it. Register its MAC in FOG, " +
          "or pin its host key (power.host_key in the inventory)",
      );
    }
    const confirmIdentity = async (): Promise<void> => {
      // No MAC to compare: the login was let in only on a pinned or recorded key, its proof.
      if (login.identity.kind !== "neighbour" || login.identity.mac === null) return;
      // The relay has just connected to the address, so its kernel holds a fresh entry for it.
      // A read: run again on a new relay login should the connection drop under it.
      const table = await this.onRelay({ ...neighbourCommand(login.address), idempotent: true });
      requireNeighbourMac(table.stdout, login.address, login.identity.mac, login.hostName);
    };
    const connection = await this.#logIn(login, label, expectedHostKey, logger, confirmIdentity);
    if (expectedHostKey === null) {
      const how =
        login.identity.kind === "neighbour"
          ? "accepted the host key of a first login: the relay's neighbour table shows the host's MAC"
          : "accepted the host key of a first login WITHOUT proof of the host's identity (relay.host_identity: trust-first-key)";
      (login.identity.kind === "neighbour" ? logger.info : logger.warn).call(
        logger,
        { hostKey: connection.hostKey },
        how,
      );
    }
    logger.debug({ user: login.user }, "logged in through the relay");
    // A lost connection is replaced by a login that requires the key this one accepted: the
    // machine is the one already shown to be the host, whatever proof that first login needed.
    const hostKey = connection.hostKey;
    const host = new Reconnecting(connection, () => {
      logger.warn({ hostKey }, "connection to the host lost; logging in again with its key");
      return this.#logIn(login, label, hostKey, logger, async () => undefined);
    });
    return {
      hostKey,
      confirmIdentity,
      run: async (command, sink) => this.#run(command, () => host.live(), sink, label, logger),
    };
  }

  /** Ends the host logins first (their connections ride on the relay's), then the relay. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#hosts.splice(0).map((host) => host.end()));
    await this.#relay.current.end();
  }

  #open(): void {
    if (this.#closed) throw new Error("the relay session has ended; open a new one");
  }

  #liveRelay(): Promise<SshConnection> {
    this.#open();
    return this.#relay.live();
  }

  /**
   * Runs `command` on the connection `live` gives. A connection found lost before the command
   * starts is replaced first (nothing of the command was sent). An idempotent command is run
   * again, on a new login, when its connection was lost while it ran; any other command's
   * OutcomeUnknownError goes to the caller, who knows how to look whether it took effect.
   */
  #run(
    command: RemoteCommand,
    live: () => Promise<SshConnection>,
    sink: OutputSink | undefined,
    where: string,
    logger: Logger,
  ): Promise<CommandResult> {
    const attempt = async (): Promise<CommandResult> => {
      if (this.#closed) throw new Error("the relay session has ended; open a new one");
      return runCommand(await live(), command, sink, where, logger);
    };
    if (command.idempotent !== true) return attempt();
    return retryTransient(attempt, this.#retry, {
      logger,
      what: `\`${command.display ?? quoteShellCommand(command.argv)}\` on ${where}`,
    });
  }

  /**
   * A login on a host over a connection the relay forwards. `beforeHandshake` runs once the
   * relay has connected to the address and before the SSH handshake: a machine that is not the
   * host never sees a login.
   */
  async #logIn(
    login: HostLogin,
    label: string,
    expectedHostKey: string | null,
    logger: Logger,
    beforeHandshake: () => Promise<void>,
  ): Promise<SshConnection> {
    const timeoutSeconds = this.#config.timeoutSeconds;
    const tunnel = await forwardThroughRelay(await this.#liveRelay(), login, label, timeoutSeconds);
    let connection: SshConnection;
    try {
      if (expectedHostKey === null) await beforeHandshake();
      connection = await connectPinned(
        {
          label,
          host: login.address,
          port: login.port,
          user: login.user,
          key: login.key,
          expectedHostKey,
          expectedSource: "the host key pinned or recorded for it",
          timeoutSeconds,
          sock: tunnel,
        },
        logger,
      );
    } catch (error) {
      tunnel.close();
      throw error;
    }
    if (this.#closed) {
      // The session ended while this login was under way; nothing may outlive it.
      await connection.end();
      throw new TransientError(`The relay session ended while logging in to ${label}`);
    }
    this.#hosts.push(connection);
    return connection;
  }
}

/** A TCP connection from the relay to the host, carried as a channel of the relay's SSH link. */
function forwardThroughRelay(
  relay: SshConnection,
  login: HostLogin,
  label: string,
  timeoutSeconds: number,
): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(
        new TransientError(
          `The relay could not connect to ${label} within ${timeoutSeconds}s (host down or booting?)`,
        ),
      );
    }, timeoutSeconds * 1000);
    const answer = (error: Error | undefined, channel?: ClientChannel): void => {
      if (settled) {
        // Too late: the caller gave up; do not leave the connection open on the relay.
        channel?.close();
        return;
      }
      settled = true;
      clearTimeout(timer);
      if (channel) resolve(channel);
      else reject(forwardFailure(error, label, relay));
    };
    try {
      // The originator address is informational for the relay; 127.0.0.1:0 says "this client".
      relay.client.forwardOut("127.0.0.1", 0, login.address, login.port, (error, channel) =>
        error ? answer(error) : answer(undefined, channel),
      );
    } catch (error) {
      answer(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

/** RFC 4254 5.1 reason codes: 1 administratively prohibited, 2 connect failed. */
function forwardFailure(error: Error | undefined, label: string, relay: SshConnection): Error {
  const reason = (error as (Error & { reason?: number | string }) | undefined)?.reason;
  const detail = (error?.message ?? "no answer").replace(/^\(SSH\) Channel open failure: /, "");
  if (reason === 1) {
    return new AuthError(
      `The relay refuses to forward connections to ${label} (${detail}); ` +
        "its sshd must allow TCP forwarding for this user",
    );
  }
  const lost = relay.lostWith ? ` (relay connection lost: ${relay.lostWith.message})` : "";
  return new TransientError(`The relay could not connect to ${label}: ${detail}${lost}`);
}
