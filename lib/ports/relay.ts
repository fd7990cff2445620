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
  /**
   * What an accepted exit code other than 0 means, in plain words ("domain master is not
   * defined: nothing to remove"): an expected answer, logged as this line rather than as the
   * command's error output (lib/lifecycle/host-access.ts, runLogged).
   */
  expected?: string;
  /** Shown in logs and errors instead of the argv when the argv must not be shown. */
  display?: string;
  /**
   * Running the command twice does no more than running it once: a read (`cat`, `ip neigh`,
   * `virsh dominfo`, a DHCP log lookup) or a write that only sets a state. Such a command whose
   * connection was lost, or went silent, while it ran is run again on a new login, with backoff
   * and a cap. Any other fails with OutcomeUnknownError (it may have run in part), and its caller
   * looks whether it took effect before repeating it.
   */
  idempotent?: boolean;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * How a host presenting a key never seen (the first login after imaging) is shown to be the
 * booked host before anything is sent to it:
 * - neighbour: the relay's neighbour table maps the address to `mac` (FOG's MAC for the host),
 *   checked once the relay has connected to the address and before the SSH handshake — and again
 *   whenever the caller asks (HostSession.confirmIdentity) before it sends a secret.
 * - pinned: only a pinned key is accepted (the caller passes no recorded one); a first key is
 *   refused.
 * - trust-first-key: the first key is accepted blindly (an explicit, warned opt-in).
 */
export type HostIdentityProof =
  /** `mac` null: FOG has none for the host, so a first key cannot be shown to be its own. */
  { kind: "neighbour"; mac: string | null } | { kind: "pinned" } | { kind: "trust-first-key" };

/** How to log in to a lab host through the relay. */
export interface HostLogin {
  hostName: string;
  address: string;
  port: number;
  user: string;
  key: Secret;
  /**
   * The host key to require (SHA256 fingerprint): pinned in config, or recorded after the host's
   * last imaging. Null: the first login after imaging; the key presented is accepted only as
   * `identity` allows, and reported.
   */
  expectedHostKey: string | null;
  identity: HostIdentityProof;
}

/** Output as it arrives, line by line, for the booking's log. */
export type OutputSink = (stream: "stdout" | "stderr", line: string) => void;

/**
 * Errors of a session's methods: CommandFailedError (and CommandTimeout) for a command's own
 * failure, AuthError for a refused login or host key, HostIdentityError, AddressOutsideLabError,
 * ConfigError — all final; TransientError for a login or a start that failed on the network
 * (nothing ran), and OutcomeUnknownError (a TransientError) for a command whose connection was
 * lost while it ran. A connection found lost before a command starts is replaced by a new login
 * (a host's requiring the key it showed first), so a session outlives a dropped connection.
 */
export interface RelaySession {
  /** Runs a command on the relay. */
  onRelay(command: RemoteCommand, sink?: OutputSink): Promise<CommandResult>;
  /**
   * Opens a login on a host through the relay; the key it accepted is reported. The relay is
   * asked to forward only to the lab's subnets (and the DHCP servers the configs name): any other
   * address is refused with AddressOutsideLabError before anything is sent.
   */
  host(login: HostLogin): Promise<HostSession>;
}

export interface HostSession {
  /** Fingerprint of the host key accepted for this login. */
  readonly hostKey: string;
  /**
   * Checks again, right now, that the machine logged in to is the booked host (the neighbour
   * table, when the login's identity proof is `neighbour`; nothing to check otherwise: a pinned or
   * recorded key proves it). Throws HostIdentityError when it is not. Call before sending secrets.
   */
  confirmIdentity(): Promise<void>;
  run(command: RemoteCommand, sink?: OutputSink): Promise<CommandResult>;
}

export interface Relay {
  /** Opens the relay connection, runs `work`, and closes everything it opened. */
  session<T>(work: (session: RelaySession) => Promise<T>): Promise<T>;
}
