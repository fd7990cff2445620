/**
 * One command on an open SSH connection (the relay's, or a host's through it): the argv quoted
 * for the remote shell, stdin written and closed, output split into lines for the caller's sink
 * and the debug log, the exit code checked against the accepted ones, a deadline after which the
 * command is sent KILL — and, when the connection is lost or silent, an OutcomeUnknownError:
 * the command may have run in part. Retrying is the session's business (ssh-relay.ts).
 */
import { StringDecoder } from "node:string_decoder";
import type { ClientChannel } from "ssh2";
import {
  CommandFailedError,
  errorMessage,
  OutcomeUnknownError,
  TransientError,
} from "../../errors";
import type { Logger } from "../../log";
import type { CommandResult, OutputSink, RemoteCommand } from "../../ports/relay";
import type { SshConnection } from "./connect";
import { quoteShellCommand } from "./shell-quote";

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
/** How long a connection may take to answer the probe sent when a command ran past its deadline. */
const PROBE_MAX_MS = 5_000;

/**
 * Runs one command on an open connection. Settles once: with the result, a CommandFailedError
 * (exit code not accepted, or killed by a signal), a CommandTimeoutError (past its deadline on a
 * connection that still answers), an OutcomeUnknownError when the connection was lost, or went
 * silent past the deadline, before the command reported how it ended, or a TransientError when
 * it could not be started at all (nothing ran).
 */
export async function runCommand(
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
    let forget: () => void = () => undefined;

    const settle = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      forget();
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
      if (settled) return;
      if (channel) stop(channel);
      // A command past its deadline on a connection that went silent (a dead link, the relay's
      // network gone) is no failure of the command: the connection is probed before deciding.
      void answers(connection, Math.min(PROBE_MAX_MS, command.timeoutSeconds * 1000)).then(
        (alive) => {
          if (alive) {
            settle(
              new CommandTimeoutError(
                `\`${display}\` on ${where} did not finish within ${command.timeoutSeconds}s; ` +
                  "it was sent KILL and its channel closed",
              ),
            );
            return;
          }
          settle(
            new OutcomeUnknownError(
              `\`${display}\` on ${where} did not finish within ${command.timeoutSeconds}s and the ` +
                "connection went silent (it may have run in part)",
            ),
          );
          // Nothing more comes over it: the next command logs in again.
          connection.client.destroy();
        },
      );
    }, command.timeoutSeconds * 1000);

    let ended = false;
    const onClose = (): void => {
      if (settled || ended) return;
      ended = true;
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
          new OutcomeUnknownError(
            `The connection to ${where} closed before \`${display}\` reported how it ended ` +
              `(it may have run in part)${cause}`,
          ),
        );
      }
    };
    // The command's channel may never close on a connection that is gone (a forwarded one the
    // relay only half-closes): the connection's own end settles it as well.
    forget = connection.onLost(() => {
      if (exitCode === null && signal === null) onClose();
    });

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
        // Refused by a live server (too many sessions…): it did not run. Lost with the
        // connection: the request may have reached the server.
        settle(
          connection.alive
            ? new TransientError(
                `Could not start \`${display}\` on ${where} (it did not run): ${error.message}`,
              )
            : new OutcomeUnknownError(
                `The connection to ${where} was lost while \`${display}\` was being started ` +
                  `(it may have run): ${error.message}`,
              ),
        );
      });
    } catch (error) {
      // ssh2 throws at once when the connection is not up: nothing was sent.
      settle(
        new TransientError(
          `Could not start \`${display}\` on ${where} (it did not run): ${errorMessage(error)}`,
        ),
      );
    }
  });
}

/**
 * Whether the server at the other end of `connection` still answers: a session channel is
 * asked for (and closed at once, before anything runs in it); any answer, even a refusal, is
 * one. False when none comes within `withinMs` or the connection is gone.
 */
function answers(connection: SshConnection, withinMs: number): Promise<boolean> {
  if (!connection.alive) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), withinMs);
    const answered = (alive: boolean): void => {
      clearTimeout(timer);
      resolve(alive);
    };
    try {
      // The `true` never runs on a channel closed as soon as it opens; if it did, it does nothing.
      connection.client.exec("true", (error, probe) => {
        if (error) {
          answered(connection.alive);
          return;
        }
        probe.on("error", () => undefined);
        probe.resume();
        probe.close();
        answered(true);
      });
    } catch {
      answered(false);
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
