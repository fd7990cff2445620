/**
 * The lab's LDAP directory through ldapts: VPN users are made under `${directory.user},
 * ${directory.root}`, each with the mark `laas-managed booking=<id>` in its description, and
 * removed only when they carry the mark for the booking asking. Every operation group opens its
 * own connection (TLS first: ldaps://, or StartTLS on ldap://), binds as the configured admin,
 * does its work and unbinds, so nothing long-lived can go stale between workflow steps.
 *
 * Names are data, never syntax: a DN gets its value escaped (RFC 4514, see escape.ts) and every
 * filter is an ldapts Filter object, whose values travel as raw BER octets. Passwords are sent
 * only in the bind and stored only as {SSHA} hashes; messages and log lines never carry them.
 */
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import {
  AlreadyExistsError,
  Attribute,
  Client,
  type Entry,
  EqualityFilter,
  InvalidCredentialsError,
  NoSuchObjectError,
  ResultCodeError,
  SubstringFilter,
} from "ldapts";
import type { VpnConfig } from "../../config/types";
import { AuthError, ConfigError, errorMessage, LaasError, TransientError } from "../../errors";
import type { Logger } from "../../log";
import {
  type Directory,
  type ManagedVpnUser,
  type NewVpnUser,
  type RemovalOutcome,
  type VpnAccount,
  vpnUserNameProblem,
} from "../../ports/directory";
import type { Secret } from "../../secret";
import { escapeDnValue, isDirectChildOf, type ParsedDn, parseDn } from "./escape";
import { sshaHash } from "./password-hash";

/** Start of the description that marks an entry as made by this system. */
export const MANAGED_MARK_PREFIX = "laas-managed booking=";
/** Longest user name accepted (in characters), as the dashboard side also checks. */
/** How many names are tried: the preferred one, then `-2` … `-50`. */
export const MAX_NAME_CANDIDATES = 50;

export function managedMark(bookingId: string): string {
  return `${MANAGED_MARK_PREFIX}${bookingId}`;
}

/** The booking a description marks the entry for, or null when it is not this system's mark. */
export function parseManagedMark(description: string): string | null {
  if (!description.startsWith(MANAGED_MARK_PREFIX)) return null;
  const bookingId = description.slice(MANAGED_MARK_PREFIX.length);
  return bookingId.length > 0 ? bookingId : null;
}

/** The directory answered an LDAP result code this adapter has no better class for. */
export class DirectoryError extends LaasError {
  override name = "DirectoryError";
  /** The LDAP result code (RFC 4511), or null when the failure was not an LDAP result. */
  readonly resultCode: number | null;

  constructor(message: string, resultCode: number | null = null) {
    super(message);
    this.resultCode = resultCode;
  }
}

/** A user name the directory must not be given (control characters, too long, empty). */
export class InvalidUserNameError extends LaasError {
  override name = "InvalidUserName";
}

/** RFC 4511 names of the result codes, for messages. */
const RESULT_CODE_NAMES: Record<number, string> = {
  1: "operationsError",
  2: "protocolError",
  3: "timeLimitExceeded",
  4: "sizeLimitExceeded",
  7: "authMethodNotSupported",
  8: "strongerAuthRequired",
  11: "adminLimitExceeded",
  12: "unavailableCriticalExtension",
  13: "confidentialityRequired",
  14: "saslBindInProgress",
  16: "noSuchAttribute",
  17: "undefinedAttributeType",
  18: "inappropriateMatching",
  19: "constraintViolation",
  20: "attributeOrValueExists",
  21: "invalidAttributeSyntax",
  32: "noSuchObject",
  33: "aliasProblem",
  34: "invalidDNSyntax",
  35: "isLeaf",
  36: "aliasDereferencingProblem",
  48: "inappropriateAuthentication",
  49: "invalidCredentials",
  50: "insufficientAccessRights",
  51: "busy",
  52: "unavailable",
  53: "unwillingToPerform",
  54: "loopDetect",
  64: "namingViolation",
  65: "objectClassViolation",
  66: "notAllowedOnNonLeaf",
  67: "notAllowedOnRDN",
  68: "entryAlreadyExists",
  69: "objectClassModsProhibited",
  71: "affectsMultipleDSAs",
  80: "other",
  112: "tlsNotSupported",
};

/** Result codes that say "not now" rather than "never". */
const TRANSIENT_RESULT_CODES = new Set([3, 51, 52]);

/** Node's codes for a TCP connection that could not be made or was lost. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

/** OpenSSL's and Node's codes for a server certificate that is not trusted for this name. */
const CERTIFICATE_CODE =
  /CERT|SELF_SIGNED|ISSUER|ALTNAME|HOSTNAME|VERIFY|INVALID_CA|PATH_LENGTH|INVALID_PURPOSE/;

/** ldapts's own messages for timers and lost sockets. */
const LDAPTS_CONNECTION_MESSAGE =
  /Connection timeout|Operation timed out|Socket error|Connection closed before|Socket connection not established/i;

/** Refuses a name the port's rule refuses (lib/ports/directory.ts), before anything is written. */
export function checkUserName(name: string): void {
  const problem = vpnUserNameProblem(name);
  if (problem) throw new InvalidUserNameError(problem);
}

/** The names tried in turn: `name`, `name-2`, `name-3`, … */
export function nameCandidates(preferred: string, count = MAX_NAME_CANDIDATES): string[] {
  const names = [preferred];
  for (let n = 2; n <= count; n++) names.push(`${preferred}-${n}`);
  return names;
}

/** How uid values compare in the directory (caseIgnoreMatch): case and outer spaces do not count. */
function comparableName(name: string): string {
  return name.normalize("NFKC").trim().replace(/ +/g, " ").toLowerCase();
}

/** An attribute's values as strings, whatever case the server spelt its name in. */
function valuesOf(entry: Entry, attribute: string): string[] {
  const wanted = attribute.toLowerCase();
  for (const [key, raw] of Object.entries(entry)) {
    if (key.toLowerCase() !== wanted) continue;
    const list = Array.isArray(raw) ? raw : [raw];
    return list.map((value) => (Buffer.isBuffer(value) ? value.toString("utf8") : value));
  }
  return [];
}

function nodeErrorCode(error: unknown): string | null {
  if (typeof error !== "object" || error === null || !("code" in error)) return null;
  const { code } = error as { code: unknown };
  return typeof code === "string" ? code : null;
}

function lastWord(text: string): string {
  const words = text.trim().split(/\s+/);
  return words[words.length - 1] ?? text;
}

export class LdapDirectory implements Directory {
  readonly #config: VpnConfig;
  readonly #logger: Logger;
  /** The server's URL without anything but scheme, host and port: what messages name. */
  readonly #url: string;
  readonly #host: string;
  readonly #ldaps: boolean;
  readonly #timeoutMs: number;
  readonly #usersBase: string;
  readonly #usersBaseDn: ParsedDn;
  readonly #permanent: Set<string>;
  /** Connections in use, each with the way to end its operation group early (close()). */
  readonly #open = new Map<Client, (reason: Error) => void>();

  constructor(config: VpnConfig, logger: Logger) {
    this.#config = config;
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
    this.#url = `${parsed.protocol}//${parsed.host}`;
    this.#timeoutMs = Math.max(1, config.ldap.timeoutSeconds) * 1000;
    const user = config.directory.user.trim();
    this.#usersBase = user ? `${user},${config.directory.root}` : config.directory.root;
    try {
      this.#usersBaseDn = parseDn(this.#usersBase);
    } catch (error) {
      throw new ConfigError(
        `${config.file}: directory user/root do not make a DN: ${errorMessage(error)}`,
      );
    }
    this.#permanent = new Set(config.permanentUsers.map(comparableName));
    this.#logger = logger.child({ directory: this.#url });
    if (!this.#ldaps && !config.ldap.startTls) {
      this.#logger.warn("LDAP without TLS: the bind password crosses the network in clear");
    }
  }

  /** Where users are made: `${directory.user},${directory.root}`. */
  get usersBase(): string {
    return this.#usersBase;
  }

  async createUser(user: NewVpnUser): Promise<VpnAccount> {
    checkUserName(user.preferredName);
    if (user.password.reveal().length === 0) {
      throw new LaasError(`VPN user ${JSON.stringify(user.preferredName)}: empty password`);
    }
    const fullName = user.fullName?.trim() || null;
    const email = user.email?.trim() || null;
    const userPassword = sshaHash(user.password);
    const secrets = [user.password];

    return this.#session(secrets, async (client) => {
      for (const uid of nameCandidates(user.preferredName)) {
        if (this.#isPermanent(uid)) continue;
        if (await this.#uidTaken(client, uid, secrets)) continue;
        const dn = `uid=${escapeDnValue(uid)},${this.#usersBase}`;
        const attributes = [
          new Attribute({ type: "objectClass", values: [...this.#config.user.objects] }),
          new Attribute({ type: "uid", values: [uid] }),
          new Attribute({ type: "cn", values: [fullName ?? uid] }),
          new Attribute({ type: "sn", values: [fullName ? lastWord(fullName) : uid] }),
          ...(email ? [new Attribute({ type: "mail", values: [email] })] : []),
          new Attribute({ type: "userPassword", values: [userPassword] }),
          new Attribute({ type: "description", values: [managedMark(user.bookingId)] }),
        ];
        try {
          await client.add(dn, attributes);
        } catch (error) {
          // Made by someone else between the look and the add: the next name will do.
          if (error instanceof AlreadyExistsError) {
            this.#logger.debug({ uid }, "VPN user name taken meanwhile; trying the next");
            continue;
          }
          throw this.#failure(error, `add of "${dn}"`, secrets);
        }
        this.#logger.info(
          { uid, dn, bookingId: user.bookingId },
          "VPN user added to the directory",
        );
        return { uid, dn };
      }
      throw new DirectoryError(
        `no free VPN user name under "${this.#usersBase}" on ${this.#url}: ` +
          `${JSON.stringify(user.preferredName)} and its variants -2 … -${MAX_NAME_CANDIDATES} ` +
          "are all taken or permanent",
      );
    });
  }

  async removeUser(dn: string, bookingId: string): Promise<RemovalOutcome> {
    let parsed: ParsedDn;
    try {
      parsed = parseDn(dn);
    } catch (error) {
      this.#logger.warn({ dn, bookingId, reason: errorMessage(error) }, "VPN user left alone");
      return "not-managed";
    }
    if (!isDirectChildOf(parsed, this.#usersBaseDn)) {
      this.#logger.warn(
        { dn, bookingId, usersBase: this.#usersBase },
        "VPN user left alone: the entry is not right under the users directory",
      );
      return "not-managed";
    }

    return this.#session([], async (client) => {
      let entry: Entry | undefined;
      try {
        const found = await client.search(dn, {
          scope: "base",
          attributes: ["uid", "description"],
          timeLimit: this.#config.ldap.timeoutSeconds,
        });
        entry = found.searchEntries[0];
      } catch (error) {
        if (error instanceof NoSuchObjectError) return "absent";
        throw this.#failure(error, `read of "${dn}"`, []);
      }
      if (!entry) return "absent";

      const uids = valuesOf(entry, "uid");
      if (uids.some((uid) => this.#isPermanent(uid))) {
        this.#logger.info({ dn, bookingId, uids }, "VPN user left alone: a permanent user");
        return "permanent";
      }
      const marks = valuesOf(entry, "description").map(parseManagedMark);
      if (!marks.includes(bookingId)) {
        const markedFor = marks.filter((mark) => mark !== null);
        this.#logger.warn(
          { dn, bookingId, markedFor },
          markedFor.length > 0
            ? "VPN user left alone: marked for another booking"
            : "VPN user left alone: not made by this system",
        );
        return "not-managed";
      }
      try {
        await client.del(dn);
      } catch (error) {
        if (error instanceof NoSuchObjectError) return "absent";
        throw this.#failure(error, `delete of "${dn}"`, []);
      }
      this.#logger.info({ dn, bookingId }, "VPN user deleted from the directory");
      return "deleted";
    });
  }

  async listManagedUsers(): Promise<ManagedVpnUser[]> {
    return this.#session([], async (client) => {
      let entries: Entry[];
      try {
        ({ searchEntries: entries } = await client.search(this.#usersBase, {
          scope: "one",
          filter: new SubstringFilter({ attribute: "description", initial: MANAGED_MARK_PREFIX }),
          attributes: ["uid", "description"],
          // Past the server's size limit (500 by default in slapd) only paging sees them all.
          paged: { pageSize: 200 },
          timeLimit: this.#config.ldap.timeoutSeconds,
        }));
      } catch (error) {
        throw this.#failure(error, `search under "${this.#usersBase}"`, []);
      }
      const users: ManagedVpnUser[] = [];
      for (const entry of entries) {
        // The filter matches case-insensitively; the mark itself is exact.
        const bookingId = valuesOf(entry, "description")
          .map(parseManagedMark)
          .find((mark) => mark !== null);
        const uid = valuesOf(entry, "uid")[0];
        if (!bookingId) continue;
        if (uid === undefined) {
          this.#logger.warn({ dn: entry.dn }, "marked directory entry without uid: skipped");
          continue;
        }
        users.push({ uid, dn: entry.dn, bookingId });
      }
      return users;
    });
  }

  async close(): Promise<void> {
    const open = [...this.#open];
    this.#open.clear();
    const closed = new TransientError(`the connection to ${this.#url} was closed`);
    for (const [, abandon] of open) abandon(closed);
    await Promise.all(open.map(([client]) => client.unbind().catch(() => undefined)));
  }

  #isPermanent(uid: string): boolean {
    return this.#permanent.has(comparableName(uid));
  }

  async #uidTaken(client: Client, uid: string, secrets: Secret[]): Promise<boolean> {
    try {
      const found = await client.search(this.#usersBase, {
        scope: "one",
        filter: new EqualityFilter({ attribute: "uid", value: uid }),
        attributes: ["1.1"],
        sizeLimit: 1,
        timeLimit: this.#config.ldap.timeoutSeconds,
      });
      return found.searchEntries.length > 0;
    } catch (error) {
      throw this.#failure(error, `search under "${this.#usersBase}"`, secrets);
    }
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

  /** One connection: TLS, admin bind, `work`, unbind (whatever happened). */
  async #session<T>(secrets: Secret[], work: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({
      url: this.#url,
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
              `StartTLS with ${this.#url} took longer than ${this.#config.ldap.timeoutSeconds}s`,
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
          `${this.#url} refused StartTLS (${this.#describeResult(error)}); ` +
            "use ldaps:// or set ldap.start_tls: false",
        );
      }
      throw this.#failure(error, "StartTLS", secrets);
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
        throw new AuthError(`LDAP bind as "${user}" to ${this.#url} refused: invalid credentials`);
      }
      throw this.#failure(error, `bind as "${user}"`, secrets);
    }
  }

  #describeResult(error: ResultCodeError): string {
    const name = RESULT_CODE_NAMES[error.code] ?? "unknown result code";
    const detail = error.message.trim();
    return detail ? `${name} (${error.code}): ${detail}` : `${name} (${error.code})`;
  }

  /** The project's error for a failed `action`, its message free of every secret in play. */
  #failure(error: unknown, action: string, secrets: Secret[]): LaasError {
    const failure = this.#classify(error, action);
    const all = [this.#config.authentication.pass, ...secrets];
    let message = failure.message;
    for (const secret of all) {
      const value = secret.reveal();
      if (value.length > 0) message = message.split(value).join("[secret]");
    }
    failure.message = message;
    return failure;
  }

  #classify(error: unknown, action: string): LaasError {
    if (error instanceof LaasError) return error;
    const at = `LDAP ${action} on ${this.#url}`;
    if (error instanceof ResultCodeError) {
      const described = this.#describeResult(error);
      if (error.code === 49 || error.code === 50) {
        return new AuthError(`${at} refused: ${described}`);
      }
      if (TRANSIENT_RESULT_CODES.has(error.code)) return new TransientError(`${at}: ${described}`);
      return new DirectoryError(`${at} failed: ${described}`, error.code);
    }
    const code = nodeErrorCode(error);
    const message = errorMessage(error);
    if (code !== null && CERTIFICATE_CODE.test(code)) {
      return new ConfigError(
        `${at}: the server's certificate is not trusted (${code}: ${message}); ` +
          "check ldap.ca and the host name in ldap.url",
      );
    }
    if (code?.startsWith("ERR_SSL_") || code?.startsWith("ERR_TLS_")) {
      return new ConfigError(`${at}: TLS handshake failed (${code}: ${message})`);
    }
    if ((code !== null && NETWORK_CODES.has(code)) || LDAPTS_CONNECTION_MESSAGE.test(message)) {
      return new TransientError(`${at}: server unreachable or not answering (${message})`);
    }
    return new DirectoryError(`${at} failed: ${message}`);
  }
}
