/**
 * Power control by SSH: log in to the host and run `reboot`, so that it network-boots into FOG's
 * imaging client. Unlike the original tool (StrictHostKeyChecking=no), the host key is checked
 * before any credential is offered: against the pinned `host_key` when configured, else against
 * the key recorded the first time the host was seen, else it is accepted and answered to the
 * caller, which records it.
 */
import type { ClientChannel, ConnectConfig } from "ssh2";
import ssh2 from "ssh2";
import {
  AuthError,
  ConfigError,
  errorMessage,
  LaasError,
  ProtocolError,
  TransientError,
} from "../../errors";
import { type Logger, silentLogger } from "../../log";
import type { PowerControl, PowerTarget } from "../../ports/power";
import { classifySshError } from "./connect";
import { fingerprintSha256, normalizeFingerprint } from "./host-key";

/** Fixed argv: nothing from configuration or the dashboard is ever part of the command. */
const REBOOT_COMMAND = "reboot";
/** How much of the command's stderr is kept for the error message. */
const STDERR_TAIL_CHARS = 500;
/**
 * Signals that end `reboot` when the host goes down under it (init's SIGTERM, then SIGKILL; a
 * session's SIGHUP): the reboot is under way, not refused.
 */
const SHUTDOWN_SIGNALS = new Set(["TERM", "KILL", "HUP"]);

/** The host ran `reboot` and it answered failure (no permission, no such command…). */
export class RebootFailedError extends LaasError {
  override name = "RebootFailed";
}

interface ExpectedKey {
  fingerprint: string;
  /** Where the expectation comes from, for the refusal message. */
  source: "the pinned host_key" | "the key recorded when the host was first seen";
}

interface CommandOutcome {
  exitCode: number | null;
  signal: string | null;
  stderr: string;
  /** Without an exit status: the connection closed, or the host went quiet until the deadline. */
  ended: "closed" | "deadline";
}

export class SshPowerControl implements PowerControl {
  readonly #logger: Logger;

  constructor(options: { logger?: Logger } = {}) {
    this.#logger = options.logger ?? silentLogger;
  }

  async reboot(target: PowerTarget): Promise<{ hostKey: string }> {
    const { power } = target;
    const endpoint = `${target.address}:${power.port}`;
    const expected = expectedHostKey(target);
    const log = this.#logger.child({ host: target.hostName, endpoint, user: power.user });
    log.debug({ hostKeyPolicy: expected?.source ?? "first seen" }, "ssh reboot: connecting");

    const session = await runReboot(target, expected);
    const how = describeEnd(session.outcome);
    if (!succeeded(session.outcome)) {
      const status =
        session.outcome.exitCode !== null
          ? `exit status ${session.outcome.exitCode}`
          : `signal ${session.outcome.signal}`;
      const tail = session.outcome.stderr.trim();
      throw new RebootFailedError(
        `\`${REBOOT_COMMAND}\` on ${target.hostName} (${endpoint}) as ${power.user} failed with ` +
          `${status}${tail ? `: ${tail}` : " and no error output"}`,
      );
    }
    log.info({ hostKey: session.hostKey, firstSeen: expected === null, how }, "ssh reboot sent");
    return { hostKey: session.hostKey };
  }
}

/** The fingerprint the host must present, or null for "first seen: accept and record". */
function expectedHostKey(target: PowerTarget): ExpectedKey | null {
  const { hostKey } = target.power;
  if (hostKey !== null) {
    return {
      fingerprint: checkedFingerprint(hostKey, target, "host_key"),
      source: "the pinned host_key",
    };
  }
  if (target.knownHostKey !== null) {
    return {
      fingerprint: checkedFingerprint(target.knownHostKey, target, "recorded host key"),
      source: "the key recorded when the host was first seen",
    };
  }
  return null;
}

function checkedFingerprint(value: string, target: PowerTarget, what: string): string {
  const fingerprint = normalizeFingerprint(value);
  if (fingerprint === null) {
    // Failing closed: an unreadable expectation must never turn into "accept anything".
    throw new ConfigError(
      `${what} for ${target.hostName} is not an OpenSSH SHA256 fingerprint ` +
        `("SHA256:" and 43 base64 characters, as ssh-keygen -lf prints it): ${JSON.stringify(value)}`,
    );
  }
  return fingerprint;
}

function succeeded(outcome: CommandOutcome): boolean {
  if (outcome.exitCode !== null) return outcome.exitCode === 0;
  // No status at all: the connection dropped under the command, as a host going down does.
  return outcome.signal === null || SHUTDOWN_SIGNALS.has(outcome.signal);
}

function describeEnd(outcome: CommandOutcome): string {
  if (outcome.exitCode !== null) return `exit ${outcome.exitCode}`;
  if (outcome.signal !== null) return `signal ${outcome.signal}`;
  return outcome.ended === "closed" ? "connection closed" : "no answer before the deadline";
}

/**
 * One SSH session: connect, verify the host key, log in, run `reboot`, and collect how it ended.
 * Settles exactly once and always ends the connection. Errors before the command was accepted
 * are classified (auth, transient, protocol); once the host has accepted the command, losing
 * the connection or hearing nothing more is what a host going down looks like, so it counts as
 * "no exit status" rather than as a failure.
 */
function runReboot(
  target: PowerTarget,
  expected: ExpectedKey | null,
): Promise<{ hostKey: string; outcome: CommandOutcome }> {
  const { power } = target;
  const endpoint = `${target.address}:${power.port}`;
  const timeoutMs = power.timeoutSeconds * 1000;
  const client = new ssh2.Client();

  let presented: string | null = null;
  let keyRefused = false;
  let commandAccepted = false;
  let exitCode: number | null = null;
  let signal: string | null = null;
  let stderr = "";
  let ended: CommandOutcome["ended"] = "closed";

  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error: Error | null, destroy = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (destroy) client.destroy();
      else client.end();
      if (error) {
        reject(error);
      } else if (presented === null) {
        // Cannot happen once a command ran (the key is verified first), but never answer a
        // success without a key to record.
        reject(new ProtocolError(`SSH session with ${endpoint} ended without a host key`));
      } else {
        resolve({ hostKey: presented, outcome: { exitCode, signal, stderr, ended } });
      }
    };

    const beforeCommand = (error: Error): Error => {
      if (keyRefused) return hostKeyMismatch(target, expected, presented);
      return classifyConnectError(error, target, endpoint);
    };

    const deadline = setTimeout(() => {
      if (commandAccepted) {
        ended = "deadline";
        settle(null, true);
      } else
        settle(
          new TransientError(
            `SSH to ${target.hostName} (${endpoint}) did not complete within ${power.timeoutSeconds}s`,
          ),
          true,
        );
    }, timeoutMs);

    const onChannel = (stream: ClientChannel): void => {
      commandAccepted = true;
      // stdout is not needed, but it must be drained or the channel window can stall the command.
      stream.resume();
      stream.stderr.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString("utf8")).slice(-STDERR_TAIL_CHARS);
      });
      stream.on("exit", (code: number | null, signalName?: string) => {
        exitCode = code;
        signal = code === null ? (signalName ?? null) : null;
      });
      stream.on("close", () => settle(null));
    };

    client.on("ready", () => {
      try {
        client.exec(REBOOT_COMMAND, (error, stream) => {
          if (error) settle(beforeCommand(error));
          else onChannel(stream);
        });
      } catch (error) {
        settle(beforeCommand(error instanceof Error ? error : new Error(String(error))));
      }
    });
    client.on("error", (error: Error) => {
      settle(commandAccepted ? null : beforeCommand(error));
    });
    client.on("close", () => {
      settle(
        commandAccepted
          ? null
          : keyRefused
            ? hostKeyMismatch(target, expected, presented)
            : new TransientError(
                `SSH connection to ${target.hostName} (${endpoint}) closed before \`${REBOOT_COMMAND}\` could run`,
              ),
      );
    });

    const config: ConnectConfig = {
      host: target.address,
      port: power.port,
      username: power.user,
      privateKey: power.key.reveal(),
      readyTimeout: timeoutMs,
      // Only the key: no agent, no password, no keyboard-interactive prompts.
      tryKeyboard: false,
      // Runs before user authentication, so a wrong host never sees a login attempt.
      hostVerifier: (keyBlob: Buffer): boolean => {
        presented = fingerprintSha256(keyBlob);
        if (expected === null || expected.fingerprint === presented) return true;
        keyRefused = true;
        return false;
      },
    };
    try {
      client.connect(config);
    } catch (error) {
      // ssh2 throws synchronously for an unreadable key; its message never quotes the key.
      settle(
        new ConfigError(
          `SSH power key (${power.key.source}) for ${target.hostName} cannot be used: ${errorMessage(error)}`,
        ),
      );
    }
  });
}

function hostKeyMismatch(
  target: PowerTarget,
  expected: ExpectedKey | null,
  presented: string | null,
): AuthError {
  return new AuthError(
    `Host key of ${target.hostName} (${target.address}:${target.power.port}) does not match ` +
      `${expected?.source ?? "the expected key"}: expected ${expected?.fingerprint}, ` +
      `presented ${presented}; refusing to log in. If the host was reinstalled, clear its ` +
      "recorded key (or update host_key) once the new key is confirmed.",
  );
}

/**
 * The same classes as a login through the relay (connect.ts): ssh2's `level` says which stage
 * failed; a host still booting that accepts TCP and drops it before SSH is a TransientError.
 */
function classifyConnectError(error: Error, target: PowerTarget, endpoint: string): Error {
  return classifySshError(error, {
    label: `${target.hostName} (${endpoint})`,
    user: target.power.user,
  });
}
