/**
 * The lab's LDAP directory through ldapts. VPN users are made under `${directory.user},
 * ${directory.root}`, with a uid no entry anywhere below it has, and labelled `laas-managed
 * booking=<id>` in their description. Ownership does not rest on that label (users may be able
 * to edit it) but on what the caller records: the DN, and the entryUUID (RFC 4530) read back
 * after the add. A removal reads the entry and deletes it with an assertion control (RFC 4528)
 * asserting the recorded entryUUID, so the server itself refuses to delete an entry that took
 * the recorded one's place. An entry whose entryUUID was never read (an interrupted add, or an
 * older record) is taken as this system's only when it is right under the users directory,
 * labelled for the booking and made by the account this system binds as (creatorsName).
 *
 * Every operation group opens its own connection, TLS first, bound as the configured admin
 * (connection.ts), and is run again from its start after a TransientError. Each is safe to run
 * again: a removal reads, then deletes asserting the entryUUID (an entry already gone is
 * `absent`); an adoption reads, then sets the password again; a creation looks at the DN it
 * announced in an earlier attempt of the same call before anything else, so an entry whose add
 * went through while its answer was lost is recognised as its own — right under the users
 * directory, labelled for the booking, made by this account — and kept, not made a second time
 * under the next name.
 *
 * Names are data, never syntax: a DN gets its value escaped (RFC 4514, see escape.ts) and every
 * filter is an ldapts Filter object, whose values travel as raw BER octets. Passwords are sent
 * only in the bind and in Password Modify (RFC 3062, see extensions.ts), which leaves the hashing
 * to the server's own scheme (slapd's `password-hash`); messages and log lines never carry them.
 */
import {
  AlreadyExistsError,
  Attribute,
  type Client,
  type Entry,
  EqualityFilter,
  NoSuchObjectError,
  ResultCodeError,
} from "ldapts";
import type { VpnConfig } from "../../config/types";
import { ConfigError, errorMessage, LaasError } from "../../errors";
import type { Logger } from "../../log";
import {
  type AdoptionOutcome,
  type Directory,
  type IntendedVpnUser,
  type NewVpnUser,
  type RecordedEntry,
  type RemovalOutcome,
  type VpnAccount,
  vpnUserNameProblem,
} from "../../ports/directory";
import type { Secret } from "../../secret";
import type { RetryPolicy } from "../retry";
import { LdapConnector } from "./connection";
import { DirectoryError, InvalidUserNameError } from "./errors";
import { escapeDnValue, isDirectChildOf, type ParsedDn, parseDn, sameDn } from "./escape";
import {
  ASSERTION_FAILED,
  AssertionControl,
  PASSWORD_MODIFY_OID,
  passwordModifyRequest,
} from "./extensions";

export { DirectoryError, InvalidUserNameError };

/** Start of the description that labels an entry as made by this system. */
export const MANAGED_MARK_PREFIX = "laas-managed booking=";
/** How many names are tried: the preferred one, then `-2` … `-50`. */
export const MAX_NAME_CANDIDATES = 50;

/** What removal and adoption read of an entry (operational attributes must be asked for). */
const CHECKED_ATTRIBUTES = ["uid", "description", "entryUUID", "creatorsName"];

export function managedMark(bookingId: string): string {
  return `${MANAGED_MARK_PREFIX}${bookingId}`;
}

/** The booking a description labels the entry for, or null when it is not this system's label. */
export function parseManagedMark(description: string): string | null {
  if (!description.startsWith(MANAGED_MARK_PREFIX)) return null;
  const bookingId = description.slice(MANAGED_MARK_PREFIX.length);
  return bookingId.length > 0 ? bookingId : null;
}

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

function lastWord(text: string): string {
  const words = text.trim().split(/\s+/);
  return words[words.length - 1] ?? text;
}

function checkPassword(what: string, password: Secret): void {
  if (password.reveal().length === 0) throw new LaasError(`${what}: empty password`);
}

export class LdapDirectory implements Directory {
  readonly #config: VpnConfig;
  readonly #logger: Logger;
  readonly #connector: LdapConnector;
  /** The server's URL without anything but scheme, host and port: what messages name. */
  readonly #url: string;
  readonly #usersBase: string;
  readonly #usersBaseDn: ParsedDn;
  readonly #permanent: Set<string>;
  /** The account this system binds as: the creatorsName of every entry it made. */
  readonly #bindDn: ParsedDn;

  constructor(config: VpnConfig, logger: Logger, options: { retry?: RetryPolicy } = {}) {
    this.#config = config;
    this.#connector = new LdapConnector(config, logger, options.retry);
    this.#url = this.#connector.url;
    const user = config.directory.user.trim();
    this.#usersBase = user ? `${user},${config.directory.root}` : config.directory.root;
    try {
      this.#usersBaseDn = parseDn(this.#usersBase);
    } catch (error) {
      throw new ConfigError(
        `${config.file}: directory user/root do not make a DN: ${errorMessage(error)}`,
      );
    }
    try {
      this.#bindDn = parseDn(config.authentication.user);
    } catch (error) {
      throw new ConfigError(
        `${config.file}: authentication.user is not a DN: ${errorMessage(error)}`,
      );
    }
    this.#permanent = new Set(config.permanentUsers.map(comparableName));
    this.#logger = logger.child({ directory: this.#url });
  }

  /** Where users are made: `${directory.user},${directory.root}`. */
  get usersBase(): string {
    return this.#usersBase;
  }

  async createUser(
    user: NewVpnUser,
    intend: (name: IntendedVpnUser) => Promise<void>,
  ): Promise<VpnAccount> {
    checkUserName(user.preferredName);
    checkPassword(`VPN user ${JSON.stringify(user.preferredName)}`, user.password);
    const fullName = user.fullName?.trim() || null;
    const email = user.email?.trim() || null;
    const secrets = [user.password];

    // The DN the last attempt announced and may have added (its answer lost): kept across the
    // attempts the connector makes of this one call.
    let announced: IntendedVpnUser | null = null;
    return this.#connector.session(
      secrets,
      async (client) => {
        for (const uid of nameCandidates(user.preferredName)) {
          if (this.#isPermanent(uid)) continue;
          const dn = `uid=${escapeDnValue(uid)},${this.#usersBase}`;
          const earlier = announced?.dn === dn;
          if (await this.#uidTaken(client, uid, secrets)) {
            if (earlier) {
              const own = await this.#ownEarlierAdd(client, uid, dn, user, secrets);
              if (own) return own;
            }
            continue;
          }
          announced = { uid, dn };
          await intend({ uid, dn });
          // No userPassword here: an added value would be stored as given, where Password Modify
          // below has the server hash it with its own scheme.
          const attributes = [
            new Attribute({ type: "objectClass", values: [...this.#config.user.objects] }),
            new Attribute({ type: "uid", values: [uid] }),
            new Attribute({ type: "cn", values: [fullName ?? uid] }),
            new Attribute({ type: "sn", values: [fullName ? lastWord(fullName) : uid] }),
            ...(email ? [new Attribute({ type: "mail", values: [email] })] : []),
            new Attribute({ type: "description", values: [managedMark(user.bookingId)] }),
          ];
          try {
            await client.add(dn, attributes);
          } catch (error) {
            if (error instanceof AlreadyExistsError) {
              // An earlier attempt's add arriving late is ours; anyone else's, the next name.
              if (earlier) {
                const own = await this.#ownEarlierAdd(client, uid, dn, user, secrets);
                if (own) return own;
              }
              this.#logger.debug({ uid }, "VPN user name taken meanwhile; trying the next");
              continue;
            }
            throw this.#connector.failure(error, `add of "${dn}"`, secrets);
          }
          const entryUUID = await this.#entryUuidOf(client, dn, secrets);
          await this.#setPassword(client, dn, user.password, secrets);
          this.#logger.info(
            { uid, dn, entryUUID, bookingId: user.bookingId },
            "VPN user added to the directory",
          );
          return { uid, dn, entryUUID };
        }
        throw new DirectoryError(
          `no free VPN user name under "${this.#usersBase}" on ${this.#url}: ` +
            `${JSON.stringify(user.preferredName)} and its variants -2 … -${MAX_NAME_CANDIDATES} ` +
            "are all taken or permanent",
        );
      },
      "creating a VPN user",
    );
  }

  /**
   * The entry at `dn` if it is the one an earlier attempt of this createUser added while the
   * answer was lost: it passes the checks of an unrecorded entry (labelled for the booking, made
   * by this account; `dn` is right under the users directory by construction). Its password is
   * set, as the add would have been followed by; null when the entry is someone else's.
   */
  async #ownEarlierAdd(
    client: Client,
    uid: string,
    dn: string,
    user: NewVpnUser,
    secrets: Secret[],
  ): Promise<VpnAccount | null> {
    const entry = await this.#read(client, dn, secrets);
    if (!entry || this.#unrecordedProblem(entry, user.bookingId) !== null) return null;
    const entryUUID = valuesOf(entry, "entryUUID")[0];
    if (!entryUUID) throw this.#noEntryUuid(dn);
    await this.#setPassword(client, dn, user.password, secrets);
    this.#logger.info(
      { uid, dn, entryUUID, bookingId: user.bookingId },
      "VPN user added by an attempt whose answer was lost: kept",
    );
    return { uid, dn, entryUUID };
  }

  async adoptUser(dn: string, bookingId: string, password: Secret): Promise<AdoptionOutcome> {
    checkPassword(`VPN user at "${dn}"`, password);
    if (!this.#rightUnderUsers(dn, bookingId)) return "not-managed";
    const secrets = [password];
    return this.#connector.session(
      secrets,
      async (client) => {
        const entry = await this.#read(client, dn, secrets);
        if (!entry) return "absent";
        if (this.#permanentEntry(entry, dn, bookingId)) return "permanent";
        const problem = this.#unrecordedProblem(entry, bookingId);
        const uid = valuesOf(entry, "uid")[0];
        const entryUUID = valuesOf(entry, "entryUUID")[0];
        if (problem !== null || uid === undefined) {
          this.#logger.warn(
            { dn, bookingId, reason: problem ?? "no uid" },
            "VPN entry of an interrupted attempt not adopted",
          );
          return "not-managed";
        }
        if (!entryUUID) throw this.#noEntryUuid(dn);
        await this.#setPassword(client, dn, password, secrets);
        this.#logger.info(
          { uid, dn, entryUUID, bookingId },
          "VPN user of an interrupted attempt adopted",
        );
        return { uid, dn, entryUUID };
      },
      "adopting a VPN user",
    );
  }

  async removeUser(recorded: RecordedEntry, bookingId: string): Promise<RemovalOutcome> {
    const { dn } = recorded;
    if (!this.#rightUnderUsers(dn, bookingId)) return "not-managed";
    return this.#connector.session(
      [],
      async (client) => {
        const entry = await this.#read(client, dn, []);
        if (!entry) return "absent";
        if (this.#permanentEntry(entry, dn, bookingId)) return "permanent";
        const found = valuesOf(entry, "entryUUID")[0] ?? null;
        // The entry to delete: the recorded one, or, when none was recorded, the one just read
        // — if it passes the checks that stand in for a record.
        let expected = recorded.entryUUID;
        if (expected === null) {
          const problem = this.#unrecordedProblem(entry, bookingId);
          if (problem !== null || found === null) {
            this.#logger.warn(
              { dn, bookingId, reason: problem ?? "the server gives no entryUUID" },
              `VPN user left alone: ${problem ?? "the server gives no entryUUID"}`,
            );
            return "not-managed";
          }
          expected = found;
        }
        // The server compares: whatever changed between the read and the delete, only the entry
        // with this entryUUID can go.
        const assertion = new AssertionControl(
          new EqualityFilter({ attribute: "entryUUID", value: expected }),
        );
        try {
          await client.del(dn, assertion);
        } catch (error) {
          if (error instanceof NoSuchObjectError) return "absent";
          if (error instanceof ResultCodeError && error.code === ASSERTION_FAILED) {
            this.#logger.warn(
              { dn, bookingId, recorded: expected, found },
              "VPN user left alone: the entry at this DN is not the one recorded (entryUUID differs)",
            );
            return "replaced";
          }
          throw this.#connector.failure(error, `delete of "${dn}"`, []);
        }
        this.#logger.info(
          { dn, bookingId, entryUUID: expected },
          "VPN user deleted from the directory",
        );
        return "deleted";
      },
      "removing a VPN user",
    );
  }

  close(): Promise<void> {
    return this.#connector.close();
  }

  #isPermanent(uid: string): boolean {
    return this.#permanent.has(comparableName(uid));
  }

  /** Whether `dn` names an entry right under the users directory (logged when not). */
  #rightUnderUsers(dn: string, bookingId: string): boolean {
    let parsed: ParsedDn;
    try {
      parsed = parseDn(dn);
    } catch (error) {
      this.#logger.warn({ dn, bookingId, reason: errorMessage(error) }, "VPN user left alone");
      return false;
    }
    if (isDirectChildOf(parsed, this.#usersBaseDn)) return true;
    this.#logger.warn(
      { dn, bookingId, usersBase: this.#usersBase },
      "VPN user left alone: the entry is not right under the users directory",
    );
    return false;
  }

  #permanentEntry(entry: Entry, dn: string, bookingId: string): boolean {
    const uids = valuesOf(entry, "uid");
    if (!uids.some((uid) => this.#isPermanent(uid))) return false;
    this.#logger.info({ dn, bookingId, uids }, "VPN user left alone: a permanent user");
    return true;
  }

  /**
   * Why an entry whose entryUUID was never recorded is not provably this system's, or null when
   * it is: labelled for the booking (the label alone proves little, users may edit it) and made
   * by the account this system binds as (creatorsName, which the server sets and nobody edits).
   * The DN itself was recorded by the caller before the add, and checked by #rightUnderUsers.
   */
  #unrecordedProblem(entry: Entry, bookingId: string): string | null {
    const marks = valuesOf(entry, "description").map(parseManagedMark);
    if (!marks.includes(bookingId)) {
      return marks.some((mark) => mark !== null)
        ? "marked for another booking"
        : "not made by this system (no label)";
    }
    const creators = valuesOf(entry, "creatorsName");
    if (creators.length === 0) return "the server gives no creatorsName";
    const madeByUs = creators.some((creator) => {
      try {
        return sameDn(parseDn(creator), this.#bindDn);
      } catch {
        return false;
      }
    });
    return madeByUs ? null : `made by another account (${creators.join(", ")})`;
  }

  /** The entry at `dn` with the attributes the checks need, or null when there is none. */
  async #read(client: Client, dn: string, secrets: Secret[]): Promise<Entry | null> {
    try {
      const found = await client.search(dn, {
        scope: "base",
        attributes: CHECKED_ATTRIBUTES,
        timeLimit: this.#config.ldap.timeoutSeconds,
      });
      return found.searchEntries[0] ?? null;
    } catch (error) {
      if (error instanceof NoSuchObjectError) return null;
      throw this.#connector.failure(error, `read of "${dn}"`, secrets);
    }
  }

  async #entryUuidOf(client: Client, dn: string, secrets: Secret[]): Promise<string> {
    const entry = await this.#read(client, dn, secrets);
    const entryUUID = entry ? valuesOf(entry, "entryUUID")[0] : undefined;
    if (!entryUUID) throw this.#noEntryUuid(dn);
    return entryUUID;
  }

  #noEntryUuid(dn: string): DirectoryError {
    return new DirectoryError(
      `LDAP server ${this.#url} gives no entryUUID (RFC 4530) for "${dn}": without it this ` +
        "system cannot tell later that the entry is the one it made",
    );
  }

  /** Password Modify as the admin: the server hashes the password with its own scheme. */
  async #setPassword(client: Client, dn: string, password: Secret, secrets: Secret[]) {
    try {
      await client.exop(PASSWORD_MODIFY_OID, passwordModifyRequest(dn, password));
    } catch (error) {
      throw this.#connector.failure(error, `Password Modify of "${dn}"`, secrets);
    }
  }

  /** Whether an entry anywhere below the users directory has this uid. */
  async #uidTaken(client: Client, uid: string, secrets: Secret[]): Promise<boolean> {
    try {
      const found = await client.search(this.#usersBase, {
        // The whole subtree: a uid in a sub-OU is as taken as one right under the users base.
        scope: "sub",
        filter: new EqualityFilter({ attribute: "uid", value: uid }),
        attributes: ["1.1"],
        sizeLimit: 1,
        timeLimit: this.#config.ldap.timeoutSeconds,
      });
      // More entries than the size limit of one have it: ldapts answers the one it got.
      return found.searchEntries.length > 0;
    } catch (error) {
      throw this.#connector.failure(error, `search under "${this.#usersBase}"`, secrets);
    }
  }
}
