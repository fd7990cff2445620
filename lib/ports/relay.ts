/**
 * The lab-side relay: the one machine LaaS logs in to over SSH. Commands run on the relay itself,
 * or on a lab host reached through it (a forwarded connection through the relay, not a second
 * process). Commands are argv arrays; the adapter quotes each argument for the remote shell, so
 * no value from the dashboard or the config is ever pasted into a command line.
 */
import type { Secret } from "../secret";

export interface RemoteCommand {
  /** Program and arguments; quoted one by one for the remote POSIX shell. */
  argv: string[];
  /** Bytes written to the command's standard input (then closed) — how secrets are passed. */
  stdin?: string;
  timeoutSeconds: number;
  /**
   * Exit codes that count as success (default [0]). A command exiting otherwise fails with
   * CommandFailedError.
   */
  okExitCodes?: number[];
  /** Shown in logs and errors instead of the argv when the argv must not be shown. */
  display?: string;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** How to log in to a lab host through the relay. */
export interface HostLogin {
  hostName: string;
  address: string;
  port: number;
  user: string;
  key: Secret;
  /**
   * The host key to require (SHA256 fingerprint): pinned in config, or recorded after the host's
   * last imaging. Null: accept the key presented and report it (first login after imaging).
   */
  expectedHostKey: string | null;
}

/** Output as it arrives, line by line, for the booking's log. */
export type OutputSink = (stream: "stdout" | "stderr", line: string) => void;

export interface RelaySession {
  /** Runs a command on the relay. */
  onRelay(command: RemoteCommand, sink?: OutputSink): Promise<CommandResult>;
  /** Opens a login on a host through the relay; the key it accepted is reported. */
  host(login: HostLogin): Promise<HostSession>;
}

export interface HostSession {
  /** Fingerprint of the host key accepted for this login. */
  readonly hostKey: string;
  run(command: RemoteCommand, sink?: OutputSink): Promise<CommandResult>;
}

export interface Relay {
  /** Opens the relay connection, runs `work`, and closes everything it opened. */
  session<T>(work: (session: RelaySession) => Promise<T>): Promise<T>;
}
