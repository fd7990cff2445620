/**
 * The relay port over SSH (ssh2): one login to the lab-side relay, whose host key is pinned in
 * config, and logins to lab hosts over connections the relay forwards (direct-tcpip channels on
 * the same SSH connection, not a second ssh process). Commands are argv arrays, each word
 * single-quoted for the remote shell; every command has a deadline, its exit code is checked and
 * its output goes, line by line, to the caller's sink and the debug log.
 */
import { StringDecoder } from "node:string_decoder";
import type { ClientChannel } from "ssh2";
import type { RelayConfig } from "../../config/types";
import {
  AuthError,
  CommandFailedError,
  errorMessage,
  HostIdentityError,
  TransientError,
} from "../../errors";
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
import { connectPinned, requireFingerprint, type SshConnection } from "./connect";
import { quoteShellCommand } from "./shell-quote";

export type { RelayConfig };

/** A remote command ran past its timeout; it was sent KILL and its channel closed. */
export class CommandTimeoutError extends CommandFailedError {
  override name = "CommandTimeout";
}

/** Output kept per stream for the result (the tail; everything went to the sink already). */
const KEPT_OUTPUT_CHARS = 1024 * 1024;
/** A "line" without a newline is cut here, so one endless line cannot grow without bound. */
const LONGEST_LINE_CHARS = 64 * 1024;
const STDERR_TAIL_LINES = 20;
const STDERR_TAIL_CHARS = 2000;

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

  constructor(config: RelayConfig, targets: ForwardTargets, logger: Logger = silentLogger) {
    this.#config = config;
    this.#targets = targets;
    this.#logger = logger;
  }

  async session<T>(work: (session: RelaySession) => Promise<T>): Promise<T> {
    const config = this.#config;
    const endpoint = `${config.host}:${config.port}`;
    const logger = this.#logger.child({ relay: endpoint });
    const connection = await connectPinned(
      {
        label: `relay ${endpoint}`,
        host: config.host,
        port: config.port,
        user: config.user,
        key: config.key,
        expectedHostKey: requireFingerprint(config.hostKey, "The relay's pinned host_key"),
        expectedSource: "the relay's pinned host_key",
        timeoutSeconds: config.timeoutSeconds,
      },
      logger,
    );
    logger.debug({ user: config.user }, "relay: logged in");
    const session = new SshRelaySession(connection, config, this.#targets, logger);
    try {
      return await work(session);
    } finally {
      await session.close();
    }
  }
}

class SshRelaySession implements RelaySession {
  readonly #relay: SshConnection;
  readonly #config: RelayConfig;
  readonly #targets: ForwardTargets;
  readonly #logger: Logger;
  readonly #hosts: SshConnection[] = [];
  #closed = false;

  constructor(relay: SshConnection, config: RelayConfig, targets: ForwardTargets, logger: Logger) {
    this.#relay = relay;
    this.#config = config;
    this.#targets = targets;
    this.#logger = logger;
  }

  async onRelay(command: RemoteCommand, sink?: OutputSink): Promise<CommandResult> {
    const where = `the relay (${this.#config.host}:${this.#config.port})`;
    return runCommand(this.#open(), command, sink, where, this.#logger);
  }

  async host(login: HostLogin): Promise<HostSession> {
    const relay = this.#open();
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
    const timeoutSeconds = this.#config.timeoutSeconds;
    const tunnel = await forwardThroughRelay(relay, login, label, timeoutSeconds);
    const confirmIdentity = async (): Promise<void> => {
      // No MAC to compare: the login was let in only on a pinned or recorded key, its proof.
      if (login.identity.kind !== "neighbour" || login.identity.mac === null) return;
      // The relay has just connected to the address, so its kernel holds a fresh entry for it.
      const table = await this.onRelay(neighbourCommand(login.address));
      requireNeighbourMac(table.stdout, login.address, login.identity.mac, login.hostName);
    };
    let connection: SshConnection;
    try {
      // Before the handshake, so a machine that is not the host never sees a login.
      if (expectedHostKey === null) await confirmIdentity();
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
    return {
      hostKey: connection.hostKey,
      confirmIdentity,
      run: (command, sink) => runCommand(connection, command, sink, label, logger),
    };
  }

  /** Ends the host logins first (their connections ride on the relay's), then the relay. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#hosts.splice(0).map((host) => host.end()));
    await this.#relay.end();
  }

  #open(): SshConnection {
    if (this.#closed) throw new Error("the relay session has ended; open a new one");
    return this.#relay;
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

/**
 * Runs one command on an open connection. Settles once: with the result, a CommandFailedError
 * (exit code not accepted, or killed by a signal), a CommandTimeoutError, or a TransientError
 * when the connection was lost before the command reported how it ended.
 */
async function runCommand(
  connection: SshConnection,
  command: RemoteCommand,
  sink: OutputSink | undefined,
  where: string,
  logger: Logger,
): Promise<CommandResult> {
  const commandLine = quoteShellCommand(command.argv);
  const display = command.display ?? commandLine;
  const okExitCodes = command.okExitCodes ?? [0];
  const log = logger.child({ command: display });
  const emit: OutputSink = (stream, line) => {
    log.debug({ stream, line }, "output");
    if (!sink) return;
    try {
      sink(stream, line);
    } catch (error) {
      // The booking's log failing must not abort the command (or leave it unsupervised).
      log.warn({ err: errorMessage(error) }, "output sink failed");
    }
  };
  const stdout = new OutputLines("stdout", emit);
  const stderr = new OutputLines("stderr", emit);
  const started = Date.now();
  log.debug({ timeoutSeconds: command.timeoutSeconds }, "running");

  return new Promise<CommandResult>((resolve, reject) => {
    let settled = false;
    let channel: ClientChannel | null = null;
    let exitCode: number | null = null;
    let signal: string | null = null;

    const settle = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const elapsedMs = Date.now() - started;
      if (error) {
        log.debug({ exitCode, signal, elapsedMs, err: error.message }, "failed");
        reject(error);
        return;
      }
      log.debug({ exitCode, elapsedMs }, "done");
      resolve({ exitCode: exitCode ?? 0, stdout: stdout.text(), stderr: stderr.text() });
    };

    const timer = setTimeout(() => {
      if (channel) stop(channel);
      settle(
        new CommandTimeoutError(
          `\`${display}\` on ${where} did not finish within ${command.timeoutSeconds}s; ` +
            "it was sent KILL and its channel closed",
        ),
      );
    }, command.timeoutSeconds * 1000);

    const onClose = (): void => {
      stdout.end();
      stderr.end();
      if (exitCode !== null) {
        if (okExitCodes.includes(exitCode)) settle(null);
        else
          settle(
            new CommandFailedError(
              failureMessage(display, where, `exit code ${exitCode}`, stderr.text()),
            ),
          );
      } else if (signal !== null) {
        settle(
          new CommandFailedError(failureMessage(display, where, `signal ${signal}`, stderr.text())),
        );
      } else {
        const cause = connection.lostWith ? `: ${connection.lostWith.message}` : "";
        settle(
          new TransientError(
            `The connection to ${where} closed before \`${display}\` reported how it ended ` +
              `(it may have run in part)${cause}`,
          ),
        );
      }
    };

    const onChannel = (opened: ClientChannel): void => {
      if (settled) {
        stop(opened);
        return;
      }
      channel = opened;
      opened.on("data", (chunk: Buffer) => stdout.push(chunk));
      opened.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
      opened.on("exit", (code: number | null, signalName?: string) => {
        exitCode = code;
        signal = code === null ? (signalName ?? "unknown") : null;
      });
      opened.on("close", onClose);
      // Writing to a command that already exited may fail; how it exited is what counts.
      opened.on("error", (error: Error) => log.debug({ err: error.message }, "channel error"));
      // Always end stdin, so a command that reads it sees EOF instead of waiting forever.
      if (command.stdin !== undefined) opened.end(command.stdin);
      else opened.end();
    };

    try {
      connection.client.exec(commandLine, (error, opened) => {
        if (!error) {
          onChannel(opened);
          return;
        }
        settle(new TransientError(`Could not start \`${display}\` on ${where}: ${error.message}`));
      });
    } catch (error) {
      settle(
        new TransientError(`Could not start \`${display}\` on ${where}: ${errorMessage(error)}`),
      );
    }
  });
}

/**
 * The parts of ssh2's channel that deliver a signal request. Channel.signal() is a silent no-op
 * once stdin has been ended (ssh2 1.17 checks that the channel is still writable; see
 * mscdex/ssh2#1510), and stdin is always ended, so the request is sent the way signal() itself
 * sends it. RFC 4254 allows channel requests after EOF; OpenSSH's sshd acts on it (killpg).
 */
interface SignalCapableChannel {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal?: (channelId: number, signalName: string) => void } };
}

/**
 * Asks the remote side to kill the command, then closes its channel. OpenSSH's sshd signals the
 * command's process group, except in root sessions, which it refuses to signal ("session
 * signalling requires privilege separation"): there, a command that writes output dies of
 * SIGPIPE once the channel is gone, but a silent one runs on until it ends by itself.
 */
function stop(channel: ClientChannel): void {
  const internals = channel as unknown as SignalCapableChannel;
  const id = internals.outgoing?.id;
  const state = internals.outgoing?.state;
  const protocol = internals._client?._protocol;
  try {
    if (id !== undefined && (state === "open" || state === "eof") && protocol?.signal) {
      protocol.signal(id, "KILL");
    } else {
      channel.signal("KILL");
    }
  } catch {
    // The channel may already be closing; closing it below is what matters.
  }
  channel.close();
}

function failureMessage(display: string, where: string, how: string, stderr: string): string {
  const tail = stderrTail(stderr);
  return (
    `\`${display}\` on ${where} failed with ${how}` +
    (tail ? `; end of its stderr:\n${tail}` : " and no stderr output")
  );
}

function stderrTail(stderr: string): string {
  const lines = stderr.trimEnd().split("\n").slice(-STDERR_TAIL_LINES).join("\n");
  return lines.length > STDERR_TAIL_CHARS ? lines.slice(-STDERR_TAIL_CHARS) : lines;
}

/** Splits one output stream into lines as it arrives, and keeps its tail for the result. */
class OutputLines {
  readonly #stream: "stdout" | "stderr";
  readonly #emit: OutputSink;
  // Decodes UTF-8 across chunk boundaries, so a character split by the transport stays whole.
  readonly #decoder = new StringDecoder("utf8");
  #pending = "";
  #kept = "";

  constructor(stream: "stdout" | "stderr", emit: OutputSink) {
    this.#stream = stream;
    this.#emit = emit;
  }

  push(chunk: Buffer): void {
    this.#add(this.#decoder.write(chunk));
  }

  end(): void {
    this.#add(this.#decoder.end());
    if (this.#pending.length > 0) this.#line(this.#pending);
    this.#pending = "";
  }

  text(): string {
    return this.#kept.length > KEPT_OUTPUT_CHARS
      ? this.#kept.slice(-KEPT_OUTPUT_CHARS)
      : this.#kept;
  }

  #add(text: string): void {
    if (text.length === 0) return;
    this.#kept += text;
    // Trimmed in steps of the cap, so the cost of trimming stays linear in the output size.
    if (this.#kept.length > 2 * KEPT_OUTPUT_CHARS)
      this.#kept = this.#kept.slice(-KEPT_OUTPUT_CHARS);
    const parts = (this.#pending + text).split("\n");
    this.#pending = parts.pop() ?? "";
    for (const part of parts) this.#line(part);
    while (this.#pending.length > LONGEST_LINE_CHARS) {
      this.#line(this.#pending.slice(0, LONGEST_LINE_CHARS));
      this.#pending = this.#pending.slice(LONGEST_LINE_CHARS);
    }
  }

  #line(line: string): void {
    this.#emit(this.#stream, line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}
