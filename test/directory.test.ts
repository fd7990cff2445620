/**
 * The LDAP directory adapter against a real OpenLDAP slapd (sim/slapd.ts): VPN users
 * made, named, escaped, labelled, adopted, removed and refused as the lab's directory sees them,
 * over ldaps:// and StartTLS with certificates made by openssl. Passwords are set with Password
 * Modify and hashed by slapd's own scheme (argon2 here). Removal trusts the recorded entryUUID,
 * never the label alone. Each test works in an OU of its own.
 */

import { existsSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { Attribute, BerReader, Client, EqualityFilter, InvalidCredentialsError } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { escapeDnValue, isDirectChildOf, parseDn } from "../lib/adapters/ldap/escape";
import { PASSWORD_MODIFY_OID, passwordModifyRequest } from "../lib/adapters/ldap/extensions";
import {
  checkUserName,
  InvalidUserNameError,
  LdapDirectory,
  MANAGED_MARK_PREFIX,
  managedMark,
  parseManagedMark,
} from "../lib/adapters/ldap/ldap-directory";
import { NO_RETRY } from "../lib/adapters/retry";
import type { VpnConfig } from "../lib/config/types";
import { AuthError, ConfigError, errorMessage, TransientError } from "../lib/errors";
import type {
  IntendedVpnUser,
  NewVpnUser,
  RecordedEntry,
  VpnAccount,
} from "../lib/ports/directory";
import { Secret } from "../lib/secret";
import { type RunningSlapd, startSlapd } from "../sim/slapd";
import { freePort } from "../sim/sshd";
import { capturingLogger } from "./helpers/logs";

let slapd: RunningSlapd;
let admin: Client;
/** Every directory in this file logs here; the last test reads it all. */
const captured = capturingLogger("debug");
/** Every password handed to the code under test, and every error message it produced. */
const passwords: string[] = [];
const errorMessages: string[] = [];
let ouCount = 0;

beforeAll(async () => {
  slapd = await startSlapd();
  passwords.push(slapd.adminPassword, slapd.writerPassword);
  admin = await slapd.adminClient();
}, 900_000);

afterAll(async () => {
  await admin?.unbind().catch(() => undefined);
  await slapd?.stop();
});

const OBJECTS = ["top", "person", "organizationalPerson", "inetOrgPerson"];

/** A fresh OU below the suffix, so each test has a users directory of its own. */
async function freshOu(): Promise<string> {
  ouCount += 1;
  const rdn = `ou=t${ouCount}`;
  await admin.add(`${rdn},${slapd.suffix}`, {
    objectClass: ["top", "organizationalUnit"],
    ou: `t${ouCount}`,
  });
  return rdn;
}

function vpnConfig(
  usersRdn: string,
  overrides: {
    ldap?: Partial<VpnConfig["ldap"]>;
    adminPassword?: string;
    /** Bind as the writer account (not the rootdn) instead of the admin. */
    asWriter?: boolean;
  } = {},
): VpnConfig {
  const bindDn = overrides.asWriter ? slapd.writerDn : slapd.adminDn;
  const adminPassword =
    overrides.adminPassword ?? (overrides.asWriter ? slapd.writerPassword : slapd.adminPassword);
  passwords.push(adminPassword);
  return {
    file: "/etc/laas/vpn.yaml",
    server: "127.0.0.1",
    authentication: { user: bindDn, pass: new Secret(adminPassword, "/etc/laas/ldap_pass") },
    directory: { root: slapd.suffix, user: usersRdn },
    user: { objects: OBJECTS },
    database: "/var/lib/laas/vpn",
    permanentUsers: ["vpn-admin", "Operator"],
    ldap: {
      url: slapd.ldapsUrl,
      startTls: false,
      caPem: slapd.caPem,
      verifyCertificate: true,
      timeoutSeconds: 5,
      ...overrides.ldap,
    },
  };
}

/** One attempt per operation: what each failure is classed as (retries: directory-faults.test.ts). */
function directory(config: VpnConfig): LdapDirectory {
  return new LdapDirectory(config, captured.logger, { retry: NO_RETRY });
}

let passwordCount = 0;
function newUser(preferredName: string, bookingId: string, extra: Partial<NewVpnUser> = {}) {
  passwordCount += 1;
  const password = `Vpn-pass-${passwordCount}-${Math.random().toString(36).slice(2)}`;
  passwords.push(password);
  return {
    bookingId,
    preferredName,
    fullName: null,
    email: null,
    password: new Secret(password),
    ...extra,
  } satisfies NewVpnUser;
}

/** The error `promise` fails with; its message is kept for the secrets check at the end. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    errorMessages.push(errorMessage(error));
    if (error instanceof Error) return error;
    throw new Error(`not an Error: ${String(error)}`);
  }
  throw new Error("expected a failure, but it succeeded");
}

/** Every DN createUser said it was about to add, in order. */
let intended: IntendedVpnUser[] = [];

/** createUser, recording what it announces as the workflow does. */
function create(dir: LdapDirectory, user: NewVpnUser): Promise<VpnAccount> {
  return dir.createUser(user, async (name) => {
    intended.push(name);
  });
}

function recorded(account: VpnAccount): RecordedEntry {
  return { dn: account.dn, entryUUID: account.entryUUID };
}

/** A removal of a DN nobody has, right under the OU: opens a session like any operation. */
function probe(dir: LdapDirectory, usersRdn: string): Promise<unknown> {
  return dir.removeUser({ dn: `uid=probe,${usersRdn},${slapd.suffix}`, entryUUID: null }, "p");
}

async function readEntry(dn: string): Promise<Record<string, unknown> | undefined> {
  const { searchEntries } = await admin.search(dn, {
    scope: "base",
    attributes: ["*", "entryUUID", "creatorsName"],
  });
  return searchEntries[0];
}

/** The uids of the entries under the OU labelled for `bookingId`, as the admin sees them. */
async function labelled(usersRdn: string, bookingId: string): Promise<string[]> {
  const { searchEntries } = await admin.search(`${usersRdn},${slapd.suffix}`, {
    scope: "sub",
    filter: new EqualityFilter({ attribute: "description", value: managedMark(bookingId) }),
    attributes: ["uid"],
  });
  return searchEntries.map((entry) => String(entry.uid)).sort();
}

async function canBind(dn: string, password: string): Promise<boolean> {
  const client = new Client({ url: slapd.url, timeout: 5_000 });
  try {
    await client.bind(dn, password);
    return true;
  } catch (error) {
    if (error instanceof InvalidCredentialsError) return false;
    throw error;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

async function exists(dn: string): Promise<boolean> {
  try {
    return (await readEntry(dn)) !== undefined;
  } catch {
    return false;
  }
}

/** An entry made by someone else (no mark), as the lab's admins make them. */
async function addForeignUser(usersRdn: string, uid: string, description?: string) {
  const dn = `uid=${escapeDnValue(uid)},${usersRdn},${slapd.suffix}`;
  await admin.add(dn, [
    new Attribute({ type: "objectClass", values: OBJECTS }),
    new Attribute({ type: "uid", values: [uid] }),
    new Attribute({ type: "cn", values: [uid] }),
    new Attribute({ type: "sn", values: [uid] }),
    ...(description ? [new Attribute({ type: "description", values: [description] })] : []),
  ]);
  return dn;
}

describe("escaping and marks (no server)", () => {
  it("escapes DN values as RFC 4514 asks", () => {
    expect(escapeDnValue('a,b+c="d"\\<e>;f')).toBe('a\\,b\\+c\\=\\"d\\"\\\\\\<e\\>\\;f');
    expect(escapeDnValue(" lead")).toBe("\\ lead");
    expect(escapeDnValue("trail ")).toBe("trail\\ ");
    expect(escapeDnValue("#hash")).toBe("\\#hash");
    expect(escapeDnValue("mid#dle")).toBe("mid#dle");
    expect(escapeDnValue("nul\u0000byte")).toBe("nul\\00byte");
    expect(escapeDnValue("Zoë")).toBe("Zoë");
    expect(escapeDnValue(" ")).toBe("\\ ");
  });

  it("parses what it escapes back to the same value", () => {
    for (const value of [
      'a,b+c="d"\\<e>;f',
      " lead",
      "trail ",
      "#hash",
      "*)(uid=*",
      "Zoë",
      "x\u0000",
    ]) {
      const [rdn] = parseDn(`uid=${escapeDnValue(value)},ou=People,dc=example,dc=org`);
      expect(rdn).toEqual([{ type: "uid", value }]);
    }
    expect(parseDn("uid=Zo\\C3\\AB,ou=People")[0]).toEqual([{ type: "uid", value: "Zoë" }]);
    expect(parseDn("cn=a+sn=b,dc=x")).toEqual([
      [
        { type: "cn", value: "a" },
        { type: "sn", value: "b" },
      ],
      [{ type: "dc", value: "x" }],
    ]);
    expect(() => parseDn("uid=a,=b")).toThrow(/malformed DN/);
    expect(() => parseDn("uid=a\\")).toThrow(/dangling escape/);
  });

  it("places a DN right under its parent, whatever the spelling of the parent", () => {
    const base = parseDn("ou=People,dc=example,dc=org");
    expect(isDirectChildOf(parseDn("uid=a,OU=people, DC=Example,dc=org"), base)).toBe(true);
    expect(isDirectChildOf(parseDn("uid=a,ou=Other,dc=example,dc=org"), base)).toBe(false);
    expect(isDirectChildOf(parseDn("uid=a,uid=b,ou=People,dc=example,dc=org"), base)).toBe(false);
    expect(isDirectChildOf(parseDn("ou=People,dc=example,dc=org"), base)).toBe(false);
    // An escaped comma is part of the value, not a way out of the users directory.
    expect(isDirectChildOf(parseDn("uid=a\\,ou=People,dc=example,dc=org"), base)).toBe(false);
  });

  it("marks and reads marks", () => {
    expect(managedMark("1234")).toBe(`${MANAGED_MARK_PREFIX}1234`);
    expect(parseManagedMark("laas-managed booking=1234")).toBe("1234");
    expect(parseManagedMark("laas-managed booking=")).toBeNull();
    expect(parseManagedMark("LAAS-MANAGED booking=1234")).toBeNull();
    expect(parseManagedMark("made by hand")).toBeNull();
  });

  it("encodes a Password Modify request as RFC 3062 asks", () => {
    expect(PASSWORD_MODIFY_OID).toBe("1.3.6.1.4.1.4203.1.11.1");
    const value = passwordModifyRequest("uid=a", new Secret("pw"));
    // SEQUENCE { [0] userIdentity, [2] newPasswd }, no oldPasswd: an administrator sets it.
    expect([...value]).toEqual([
      0x30,
      0x0b,
      0x80,
      0x05,
      ...Buffer.from("uid=a"),
      0x82,
      0x02,
      ...Buffer.from("pw"),
    ]);
    const reader = new BerReader(
      passwordModifyRequest("uid=Zoë,ou=People", new Secret("pässwörd")),
    );
    reader.readSequence();
    expect(reader.readString(0x80)).toBe("uid=Zoë,ou=People");
    expect(reader.readString(0x82)).toBe("pässwörd");
  });

  it("refuses user names with control characters or over 64 characters", () => {
    expect(() => checkUserName("x".repeat(64))).not.toThrow();
    expect(() => checkUserName("x".repeat(65))).toThrow(InvalidUserNameError);
    expect(() => checkUserName("new\nline")).toThrow(/control character \(U\+000a\)/);
    expect(() => checkUserName("nul\u0000")).toThrow(/U\+0000/);
    expect(() => checkUserName("")).toThrow(/empty/);
  });
});

describe("LdapDirectory against slapd", () => {
  it("creates a labelled user whose password slapd hashes, and the user binds with it", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const user = newUser("jdoe", "4242", {
      fullName: "Jane Q. Doe",
      email: "jane@example.org",
    });
    intended = [];
    const account = await create(dir, user);
    const dn = `uid=jdoe,${ou},${slapd.suffix}`;
    expect(account).toEqual({ uid: "jdoe", dn, entryUUID: expect.any(String) });
    expect(intended).toEqual([{ uid: "jdoe", dn }]);

    const entry = await readEntry(account.dn);
    expect(entry).toBeDefined();
    expect(entry?.objectClass).toEqual(OBJECTS);
    expect(entry?.uid).toBe("jdoe");
    expect(entry?.cn).toBe("Jane Q. Doe");
    expect(entry?.sn).toBe("Doe");
    expect(entry?.mail).toBe("jane@example.org");
    expect(entry?.description).toBe("laas-managed booking=4242");
    // The identity the caller records is the server's own.
    expect(entry?.entryUUID).toBe(account.entryUUID);

    // Set through Password Modify, the password is hashed by slapd's scheme: argon2 wherever
    // the module is installed (as here), never the value as given.
    if (existsSync("/usr/lib/ldap/argon2.so")) expect(slapd.passwordScheme).toBe("{ARGON2}");
    const stored = String(entry?.userPassword);
    expect(stored.startsWith(slapd.passwordScheme)).toBe(true);
    expect(stored).not.toContain(user.password.reveal());

    // slapd itself checks the hash: the user binds with the password, not with another.
    expect(await canBind(account.dn, user.password.reveal())).toBe(true);
    expect(await canBind(account.dn, "not-the-password")).toBe(false);
    await dir.close();
  });

  it("announces the DN before adding it, and adds nothing when the announcement fails", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const seen: { name: IntendedVpnUser; existed: boolean }[] = [];
    const account = await dir.createUser(newUser("early", "20"), async (name) => {
      seen.push({ name, existed: await exists(name.dn) });
    });
    expect(seen).toEqual([{ name: { uid: "early", dn: account.dn }, existed: false }]);

    const refused = await failure(
      dir.createUser(newUser("never", "21"), async () => {
        throw new Error("the run ended");
      }),
    );
    expect(refused.message).toBe("the run ended");
    expect(await labelled(ou, "21")).toEqual([]);

    // A name taken between the look and the add: the next one is announced before its add.
    const raced: string[] = [];
    const second = await dir.createUser(newUser("racer", "22"), async (name) => {
      raced.push(name.uid);
      if (name.uid === "racer") await addForeignUser(ou, "racer");
    });
    expect(raced).toEqual(["racer", "racer-2"]);
    expect(second.uid).toBe("racer-2");
  });

  it("sets passwords as an account that is not the rootdn, with slapd's scheme", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou, { asWriter: true }));
    const user = newUser("by-writer", "23");
    const account = await create(dir, user);
    const entry = await readEntry(account.dn);
    expect(String(entry?.creatorsName)).toBe(slapd.writerDn);
    expect(String(entry?.userPassword).startsWith(slapd.passwordScheme)).toBe(true);
    expect(await canBind(account.dn, user.password.reveal())).toBe(true);
    expect(await dir.removeUser(recorded(account), "23")).toBe("deleted");
  });

  it("defaults cn and sn to the user name and leaves mail out when there is none", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const account = await create(dir, newUser("plain", "7"));
    const entry = await readEntry(account.dn);
    expect(entry?.cn).toBe("plain");
    expect(entry?.sn).toBe("plain");
    expect(entry?.mail).toBeUndefined();
  });

  it("makes names unique: taken, foreign and permanent names are skipped", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const first = await create(dir, newUser("alice", "1"));
    const second = await create(dir, newUser("alice", "2"));
    expect([first.uid, second.uid]).toEqual(["alice", "alice-2"]);
    expect(second.dn).toBe(`uid=alice-2,${ou},${slapd.suffix}`);

    // Someone else's entry: matched case-insensitively, as the directory compares uids.
    const foreign = await addForeignUser(ou, "Bob");
    const bob = await create(dir, newUser("bob", "3"));
    expect(bob.uid).toBe("bob-2");
    expect((await readEntry(foreign))?.description).toBeUndefined();

    // A permanent user's name is never handed out, even while it has no entry.
    const permanent = await create(dir, newUser("vpn-admin", "4"));
    expect(permanent.uid).toBe("vpn-admin-2");
    const operator = await create(dir, newUser("operator", "5"));
    expect(operator.uid).toBe("operator-2");
  });

  it("counts a uid anywhere below the users directory as taken", async () => {
    const ou = await freshOu();
    const parent = `${ou},${slapd.suffix}`;
    for (const sub of ["sub", "sub2"]) {
      await admin.add(`ou=${sub},${parent}`, {
        objectClass: ["top", "organizationalUnit"],
        ou: sub,
      });
    }
    await addForeignUser(`ou=sub,${ou}`, "deep");
    // Two entries with one uid: more than the look's size limit of one, taken all the same.
    await addForeignUser(`ou=sub,${ou}`, "twice");
    await addForeignUser(`ou=sub2,${ou}`, "twice");
    const dir = directory(vpnConfig(ou));
    expect((await create(dir, newUser("deep", "30"))).uid).toBe("deep-2");
    expect((await create(dir, newUser("twice", "31"))).uid).toBe("twice-2");
    // Entries beside the users directory are not below it: their uids are free.
    const elsewhere = await freshOu();
    await addForeignUser(elsewhere, "beside");
    expect((await create(dir, newUser("beside", "32"))).uid).toBe("beside");
  });

  it("gives up with a clear error when every variant is taken", async () => {
    const ou = await freshOu();
    await addForeignUser(ou, "full");
    for (let n = 2; n <= 50; n++) await addForeignUser(ou, `full-${n}`);
    const dir = directory(vpnConfig(ou));
    const error = await failure(create(dir, newUser("full", "9")));
    expect(error.message).toMatch(/no free VPN user name .*"full".*-50/);
  });

  it("stores hostile names exactly, and looking one up never finds another", async () => {
    const ou = await freshOu();
    const hostile = [
      'a,b+c="d"\\<e>;f',
      " lead",
      "trail ",
      "#hash",
      "*)(uid=*",
      "*",
      "Zoë",
      "=eq",
      "back\\slash",
      "uid=x,ou=People",
    ];
    await addForeignUser(ou, "zz-bystander");
    const dir = directory(vpnConfig(ou));
    const accounts = [];
    for (const [index, name] of hostile.entries()) {
      const account = await create(dir, newUser(name, `h${index}`));
      // Any filter injection or mis-escaping would have found a "taken" name and added "-2".
      expect(account.uid).toBe(name);
      accounts.push(account);
    }
    for (const [index, account] of accounts.entries()) {
      const name = hostile[index] ?? "";
      const entry = await readEntry(account.dn);
      expect(entry?.uid).toBe(name);
      expect(entry?.description).toBe(`laas-managed booking=h${index}`);
      // The DN has one RDN more than the users directory: the name added no RDN of its own.
      expect(parseDn(account.dn)).toHaveLength(parseDn(`${ou},${slapd.suffix}`).length + 1);
      const { searchEntries } = await admin.search(`${ou},${slapd.suffix}`, {
        scope: "one",
        filter: new EqualityFilter({ attribute: "uid", value: name }),
        attributes: ["uid"],
      });
      expect(searchEntries.map((found) => found.uid)).toEqual([name]);
    }

    // Removal by the DN createUser gave, and by the DN as the server spells it.
    expect(await dir.removeUser(recorded(accounts[0]!), "h0")).toBe("deleted");
    const { searchEntries } = await admin.search(`${ou},${slapd.suffix}`, {
      scope: "one",
      filter: new EqualityFilter({ attribute: "uid", value: "*)(uid=*" }),
      attributes: ["1.1"],
    });
    const serverDn = searchEntries[0]?.dn ?? "";
    expect(await dir.removeUser({ dn: serverDn, entryUUID: accounts[4]!.entryUUID }, "h4")).toBe(
      "deleted",
    );
    expect(await exists(accounts[4]?.dn ?? "")).toBe(false);
    for (const account of accounts.slice(5)) expect(await exists(account.dn)).toBe(true);
    expect(await exists(`uid=zz-bystander,${ou},${slapd.suffix}`)).toBe(true);
  });

  it("refuses names with control characters or over 64 characters, naming the problem only", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    for (const name of ["new\nline", "nul\u0000byte", "tab\tbed", "y".repeat(65)]) {
      const user = newUser(name, "10");
      const error = await failure(create(dir, user));
      expect(error).toBeInstanceOf(InvalidUserNameError);
      expect(error.message).toMatch(/control character|characters long/);
      expect(error.message).not.toContain(user.password.reveal());
    }
    const { searchEntries } = await admin.search(`${ou},${slapd.suffix}`, { scope: "one" });
    expect(searchEntries).toEqual([]);
  });

  it("removes a recorded entry only while its entryUUID is the one recorded", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const mine = await create(dir, newUser("u1", "b1"));
    // Behind LaaS's back the entry is deleted and another is made in its place: same DN, same
    // label, even made by the same account — but not the entry LaaS made.
    await admin.del(mine.dn);
    await addForeignUser(ou, "u1", managedMark("b1"));
    const impostor = await readEntry(mine.dn);
    expect(impostor?.entryUUID).not.toBe(mine.entryUUID);
    expect(await dir.removeUser(recorded(mine), "b1")).toBe("replaced");
    expect(await exists(mine.dn)).toBe(true);
    expect(
      captured.lines.some(
        (line) => line.includes("not the one recorded") && line.includes(mine.entryUUID),
      ),
    ).toBe(true);

    // The entry that is the one recorded goes, once; the DN may be spelt as the server does.
    const theirs = await create(dir, newUser("u2", "b2"));
    const spelt = theirs.dn.toUpperCase().replace("UID=U2", "uid=u2");
    expect(await dir.removeUser({ dn: spelt, entryUUID: theirs.entryUUID }, "b2")).toBe("deleted");
    expect(await exists(theirs.dn)).toBe(false);
    expect(await dir.removeUser(recorded(theirs), "b2")).toBe("absent");
  });

  it("never removes a permanent user, nor anything outside the users directory", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const permanent = await addForeignUser(ou, "vpn-admin", managedMark("b1"));
    const permanentUuid = String((await readEntry(permanent))?.entryUUID);
    expect(await dir.removeUser({ dn: permanent, entryUUID: permanentUuid }, "b1")).toBe(
      "permanent",
    );
    // Recorded with its true entryUUID, but not right under the users directory.
    const elsewhere = await freshOu();
    const outside = await create(directory(vpnConfig(elsewhere)), newUser("u1", "b1"));
    expect(await dir.removeUser(recorded(outside), "b1")).toBe("not-managed");
    const ouUuid = String((await readEntry(`${ou},${slapd.suffix}`))?.entryUUID);
    expect(await dir.removeUser({ dn: `${ou},${slapd.suffix}`, entryUUID: ouUuid }, "b1")).toBe(
      "not-managed",
    );
    for (const dn of [permanent, outside.dn, `${ou},${slapd.suffix}`]) {
      expect(await exists(dn)).toBe(true);
    }
  });

  it("removes an entry whose entryUUID was never recorded only if labelled and made by its account", async () => {
    const ou = await freshOu();
    const asAdmin = directory(vpnConfig(ou));
    const asWriter = directory(vpnConfig(ou, { asWriter: true }));
    const unrecorded = (dn: string): RecordedEntry => ({ dn, entryUUID: null });
    const handMade = await addForeignUser(ou, "handmade", "made by the lab admins");
    const lookalike = await addForeignUser(ou, "lookalike", "LAAS-MANAGED booking=b1");
    const otherBooking = await addForeignUser(ou, "other", managedMark("b2"));
    // Labelled for b1 and made by the admin account: the writer did not make it.
    const byAdmin = await addForeignUser(ou, "by-admin", managedMark("b1"));

    expect(await asAdmin.removeUser(unrecorded(handMade), "b1")).toBe("not-managed");
    expect(await asAdmin.removeUser(unrecorded(lookalike), "b1")).toBe("not-managed");
    expect(await asAdmin.removeUser(unrecorded(otherBooking), "b1")).toBe("not-managed");
    expect(await asWriter.removeUser(unrecorded(byAdmin), "b1")).toBe("not-managed");
    for (const dn of [handMade, lookalike, otherBooking, byAdmin]) {
      expect(await exists(dn)).toBe(true);
    }
    expect(captured.lines.some((line) => line.includes("not made by this system"))).toBe(true);
    expect(captured.lines.some((line) => line.includes("marked for another booking"))).toBe(true);
    expect(captured.lines.some((line) => line.includes("made by another account"))).toBe(true);

    // Made by the account that removes it, and labelled for the booking: it goes.
    expect(await asAdmin.removeUser(unrecorded(byAdmin), "b1")).toBe("deleted");
    expect(await asAdmin.removeUser(unrecorded(byAdmin), "b1")).toBe("absent");
  });

  it("adopts the entry an interrupted attempt made, under the same checks", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    // The earlier attempt: its entry made, the password it set lost with it.
    const earlier = await create(dir, newUser("grace", "40"));
    const password = newUser("grace", "40").password;
    const adopted = await dir.adoptUser(earlier.dn, "40", password);
    expect(adopted).toEqual(earlier);
    expect(await canBind(earlier.dn, password.reveal())).toBe(true);
    const stored = String((await readEntry(earlier.dn))?.userPassword);
    expect(stored.startsWith(slapd.passwordScheme)).toBe(true);
    // Adopted again (a retry of the retry), it stays the same entry.
    expect(await dir.adoptUser(earlier.dn, "40", password)).toEqual(earlier);

    expect(await dir.adoptUser(`uid=nobody,${ou},${slapd.suffix}`, "40", password)).toBe("absent");
    const forOther = await addForeignUser(ou, "for-other", managedMark("41"));
    expect(await dir.adoptUser(forOther, "40", password)).toBe("not-managed");
    // Labelled for the booking, but made by another account than the one adopting.
    const byAdmin = await addForeignUser(ou, "by-admin", managedMark("40"));
    const writer = directory(vpnConfig(ou, { asWriter: true }));
    expect(await writer.adoptUser(byAdmin, "40", password)).toBe("not-managed");
    const permanent = await addForeignUser(ou, "vpn-admin", managedMark("40"));
    expect(await dir.adoptUser(permanent, "40", password)).toBe("permanent");
    const elsewhere = await freshOu();
    const outside = await addForeignUser(elsewhere, "grace", managedMark("40"));
    expect(await dir.adoptUser(outside, "40", password)).toBe("not-managed");
    for (const dn of [forOther, byAdmin, permanent, outside]) {
      const entry = await readEntry(dn);
      expect(entry?.userPassword).toBeUndefined();
    }
  });

  it("answers absent for a DN whose parent is gone", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    await admin.del(`${ou},${slapd.suffix}`);
    expect(
      await dir.removeUser({ dn: `uid=ghost,${ou},${slapd.suffix}`, entryUUID: null }, "1"),
    ).toBe("absent");
  });
});

describe("connection failures", () => {
  it("a wrong bind password is an AuthError naming the bind DN and the server", async () => {
    const ou = await freshOu();
    const wrongPassword = "Wrong-admin-pass-1";
    const dir = directory(vpnConfig(ou, { adminPassword: wrongPassword }));
    const error = await failure(probe(dir, ou));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain(slapd.adminDn);
    expect(error.message).toContain(slapd.ldapsUrl);
    expect(error.message).toContain("invalid credentials");
    expect(error.message).not.toContain(wrongPassword);
    const user = newUser("never-made", "11");
    expect(await failure(create(dir, user))).toBeInstanceOf(AuthError);
  });

  it("an empty admin password is refused before any anonymous bind", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou, { adminPassword: "" }));
    const error = await failure(probe(dir, ou));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/authentication\.pass is empty/);
  });

  it("a server that is not there is a TransientError naming the URL", async () => {
    const port = await freePort("127.0.0.1");
    const url = `ldap://127.0.0.1:${port}`;
    const dir = directory(vpnConfig("ou=People", { ldap: { url, startTls: true } }));
    const error = await failure(probe(dir, "ou=People"));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(url);
  });

  describe("a server that never answers", () => {
    let silent: Server;
    const sockets: Socket[] = [];
    beforeAll(async () => {
      silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });

    for (const [scheme, startTls] of [
      ["ldap", true],
      ["ldap", false],
      ["ldaps", false],
    ] as const) {
      it(`times out as a TransientError (${scheme}://, StartTLS ${startTls})`, async () => {
        const address = silent.address();
        const port = typeof address === "object" && address ? address.port : 0;
        const url = `${scheme}://127.0.0.1:${port}`;
        const dir = directory(
          vpnConfig("ou=People", { ldap: { url, startTls, timeoutSeconds: 1 } }),
        );
        const started = Date.now();
        const error = await failure(probe(dir, "ou=People"));
        expect(error).toBeInstanceOf(TransientError);
        expect(error.message).toContain(url);
        expect(Date.now() - started).toBeLessThan(5_000);
      });
    }
  });
});

describe("TLS", () => {
  it("ldaps:// with the CA that signed the server certificate works", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou, { ldap: { url: slapd.ldapsUrl } }));
    const account = await create(dir, newUser("over-ldaps", "t1"));
    expect(await labelled(ou, "t1")).toEqual([account.uid]);
  });

  it("StartTLS over ldap:// works", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou, { ldap: { url: slapd.url, startTls: true } }));
    const account = await create(dir, newUser("over-starttls", "t2"));
    expect(await dir.removeUser(recorded(account), "t2")).toBe("deleted");
  });

  const untrusted: [string, () => Partial<VpnConfig["ldap"]>, RegExp][] = [
    [
      "ldaps:// and another CA",
      () => ({ url: slapd.ldapsUrl, caPem: slapd.otherCaPem }),
      /certificate/,
    ],
    [
      "StartTLS and another CA",
      () => ({ url: slapd.url, startTls: true, caPem: slapd.otherCaPem }),
      /certificate/,
    ],
    ["ldaps:// and the system CAs", () => ({ url: slapd.ldapsUrl, caPem: null }), /certificate/],
    [
      "ldaps:// at an address the certificate does not name",
      () => ({ url: slapd.ldapsMismatchUrl }),
      /ALTNAME|does not match/,
    ],
  ];
  for (const [what, ldap, reason] of untrusted) {
    it(`refuses ${what} with a ConfigError naming the URL and the reason`, async () => {
      const ou = await freshOu();
      const settings = ldap();
      const dir = directory(vpnConfig(ou, { ldap: settings }));
      const user = newUser("never-made", "t3");
      const error = await failure(create(dir, user));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toContain(settings.url);
      expect(error.message).toMatch(/not trusted/);
      expect(error.message).toMatch(reason);
      const { searchEntries } = await admin.search(`${ou},${slapd.suffix}`, { scope: "one" });
      expect(searchEntries).toEqual([]);
    });
  }

  it("with verification off (labs only), an unknown CA is accepted", async () => {
    const ou = await freshOu();
    const dir = directory(
      vpnConfig(ou, { ldap: { caPem: slapd.otherCaPem, verifyCertificate: false } }),
    );
    expect(await probe(dir, ou)).toBe("absent");
  });
});

describe("closing and secrets", () => {
  it("close() ends a connection still open", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const started = Date.now();
    const pending = failure(probe(dir, ou));
    await dir.close();
    const error = await pending;
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`the connection to ${slapd.ldapsUrl} was closed`);
    expect(Date.now() - started).toBeLessThan(2_000);
    // The directory stays usable: each operation group opens its own connection.
    expect(await probe(dir, ou)).toBe("absent");
  });

  it("no password appears in any error message or log line", () => {
    expect(errorMessages.length).toBeGreaterThan(10);
    expect(captured.lines.length).toBeGreaterThan(10);
    for (const password of passwords.filter((value) => value.length > 0)) {
      for (const message of errorMessages) expect(message).not.toContain(password);
      for (const line of captured.lines) expect(line).not.toContain(password);
    }
  });
});
