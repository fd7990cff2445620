/**
 * Connections to the lab's LDAP server, one per operation group: TLS first (ldaps://, or
 * StartTLS on ldap://, the certificate verified against `ldap.ca`), a bind as the configured
 * admin, the group's work, an unbind whatever happened. Nothing long-lived can go stale between
 * workflow steps, and close() ends whatever is still open. Failures become the project's errors
 * (errors.ts), their messages free of every secret in play.
 *
 * A group that fails with a TransientError (the server down, busy or silent, the connection
 * lost, an answer lost) is run again from its start on a new connection, with backoff and a cap:
 * each group must be safe to run again — it reads before it writes, and recognises what an
 * earlier attempt whose answer was lost did (ldap-directory.ts says how, per operation).
 */
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { Client, InvalidCredentialsError, ResultCodeError } from "ldapts";
import type { VpnConfig } from "../../config/types";
import { AuthError, ConfigError, type LaasError, TransientError } from "../../errors";
import type { Logger } from "../../log";
import type { Secret } from "../../secret";
import { type RetryPolicy, retryTransient } from "../retry";
import { classifyLdapError, describeResult } from "./errors";

/**
 * Three attempts, a quarter and half a second apart (jittered), none started after 20 s: within
 * the CreateVpnUser and UndoAccess steps' 60 s even when each attempt runs into the 10 s default
 * timeout. Enough for a blip; a longer outage is the workflows' Retry's (or the next sweep's).
 */
export const DEFAULT_LDAP_RETRY: RetryPolicy = {
  retries: 2,
  minDelayMs: 250,
  maxDelayMs: 2_000,
  maxRetryMs: 20_000,
};

export class LdapConnector {
  readonly #config: VpnConfig;
  /** The server's URL without anything but scheme, host and port: what messages name. */
  readonly url: string;
  readonly #host: string;
  readonly #ldaps: boolean;
  readonly #timeoutMs: number;
  /** Connections in use, each with the way to end its operation group early (close()). */
  readonly #open = new Map<Client, (reason: Error) => void>();
  readonly #logger: Logger;
  readonly #retry: RetryPolicy;
  /** Counts close() calls: a group begun before the last one is not run again. */
  #closings = 0;

  constructor(config: VpnConfig, logger: Logger, retry: RetryPolicy = DEFAULT_LDAP_RETRY) {
    this.#config = config;
    this.#retry = retry;
    let parsed: URL;
    try {
      parsed = new URL(config.ldap.url);
    } catch {
      throw new ConfigError(`${config.file}: ldap.url is not a URL`);
    }
    if (parsed.protocol !== "ldap:" && parsed.protocol !== "ldaps:") {
      throw new ConfigError(
        `${config.file}: ldap.url must be ldap:// or ldaps://, not ${parsed.protocol}//`,
      );
    }
    this.#ldaps = parsed.protocol === "ldaps:";
    this.#host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    this.url = `${parsed.protocol}//${parsed.host}`;
    this.#timeoutMs = Math.max(1, config.ldap.timeoutSeconds) * 1000;
    this.#logger = logger.child({ directory: this.url });
    if (!this.#ldaps && !config.ldap.startTls) {
      this.#logger.warn("LDAP without TLS: the bind password crosses the network in clear");
    }
  }

  async close(): Promise<void> {
    this.#closings += 1;
    const open = [...this.#open];
    this.#open.clear();
    const closed = new TransientError(`the connection to ${this.url} was closed`);
    for (const [, abandon] of open) abandon(closed);
    await Promise.all(open.map(([client]) => client.unbind().catch(() => undefined)));
  }

  #tlsOptions(): ConnectionOptions {
    const { caPem, verifyCertificate } = this.#config.ldap;
    return {
      ...(caPem ? { ca: caPem } : {}),
      rejectUnauthorized: verifyCertificate,
      // SNI takes names only; for an address the certificate is checked against `host`.
      ...(isIP(this.#host) === 0 ? { servername: this.#host } : {}),
      minVersion: "TLSv1.2",
    };
  }

  /**
   * `work` on a connection of its own (TLS, admin bind, `work`, unbind), run again from its
   * start on a new connection after a TransientError, as the retry policy allows. `what` names
   * the group in the log lines of its retries.
   */
  async session<T>(
    secrets: Secret[],
    work: (client: Client) => Promise<T>,
    what = "LDAP operation",
  ): Promise<T> {
    const closings = this.#closings;
    return retryTransient(() => this.#once(secrets, work), this.#retry, {
      logger: this.#logger,
      what: `${what} on ${this.url}`,
      // Closed meanwhile: the caller is done with the directory, nothing is tried again.
      retryable: (error) => error instanceof TransientError && this.#closings === closings,
    });
  }

  /** One connection: TLS, admin bind, `work`, unbind (whatever happened). */
  async #once<T>(secrets: Secret[], work: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({
      url: this.url,
      timeout: this.#timeoutMs,
      connectTimeout: this.#timeoutMs,
      // Given to an ldap:// client, TLS options would make ldapts speak TLS from the first byte.
      ...(this.#ldaps ? { tlsOptions: this.#tlsOptions() } : {}),
    });
    // Unbinding a client that is still connecting leaves ldapts's connect pending for ever,
    // so close() also settles the group itself.
    let abandon: (reason: Error) => void = () => undefined;
    const abandoned = new Promise<never>((_, reject) => {
      abandon = reject;
    });
    this.#open.set(client, abandon);
    const group = (async () => {
      if (!this.#ldaps && this.#config.ldap.startTls) await this.#startTls(client, secrets);
      await this.#bind(client, secrets);
      return await work(client);
    })();
    try {
      return await Promise.race([group, abandoned]);
    } catch (error) {
      group.catch(() => undefined);
      throw error;
    } finally {
      this.#open.delete(client);
      await client.unbind().catch(() => undefined);
    }
  }

  async #startTls(client: Client, secrets: Secret[]): Promise<void> {
    // ldapts times the StartTLS request but not the handshake after it.
    const upgrade = client.startTLS({ ...this.#tlsOptions(), host: this.#host });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TransientError(
              `StartTLS with ${this.url} took longer than ${this.#config.ldap.timeoutSeconds}s`,
            ),
          ),
        this.#timeoutMs,
      );
    });
    try {
      await Promise.race([upgrade, expired]);
    } catch (error) {
      upgrade.catch(() => undefined);
      if (error instanceof ResultCodeError) {
        throw new ConfigError(
          `${this.url} refused StartTLS (${describeResult(error)}); ` +
            "use ldaps:// or set ldap.start_tls: false",
        );
      }
      throw this.failure(error, "StartTLS", secrets);
    } finally {
      clearTimeout(timer);
    }
  }

  async #bind(client: Client, secrets: Secret[]): Promise<void> {
    const { user, pass } = this.#config.authentication;
    // An empty password makes a simple bind anonymous, which most servers accept.
    if (pass.reveal().length === 0) {
      throw new ConfigError(
        `${this.#config.file}: authentication.pass is empty; binding as "${user}" would be anonymous`,
      );
    }
    try {
      await client.bind(user, pass.reveal());
    } catch (error) {
      if (error instanceof InvalidCredentialsError) {
        throw new AuthError(`LDAP bind as "${user}" to ${this.url} refused: invalid credentials`);
      }
      throw this.failure(error, `bind as "${user}"`, secrets);
    }
  }

  /** The project's error for a failed `action`, its message free of every secret in play. */
  failure(error: unknown, action: string, secrets: Secret[]): LaasError {
    const failure = classifyLdapError(error, `LDAP ${action} on ${this.url}`);
    const all = [this.#config.authentication.pass, ...secrets];
    let message = failure.message;
    for (const secret of all) {
      const value = secret.reveal();
      if (value.length > 0) message = message.split(value).join("[secret]");
    }
    failure.message = message;
    return failure;
  }
}
