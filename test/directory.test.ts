/**
 * The LDAP directory adapter against a real OpenLDAP slapd (test/helpers/slapd.ts): VPN users
 * made, named, escaped, marked, swept and refused as the lab's directory sees them, over ldaps://
 * and StartTLS with certificates made by openssl. Each test works in an OU of its own.
 */
import { createServer, type Server, type Socket } from "node:net";
import { Attribute, Client, EqualityFilter, InvalidCredentialsError } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { escapeDnValue, isDirectChildOf, parseDn } from "../lib/adapters/ldap/escape";
import {
  checkUserName,
  InvalidUserNameError,
  LdapDirectory,
  MANAGED_MARK_PREFIX,
  managedMark,
  parseManagedMark,
} from "../lib/adapters/ldap/ldap-directory";
import { SSHA_PREFIX, sshaHash, sshaMatches } from "../lib/adapters/ldap/password-hash";
import type { VpnConfig } from "../lib/config/types";
import { AuthError, ConfigError, errorMessage, TransientError } from "../lib/errors";
import type { NewVpnUser } from "../lib/ports/directory";
import { Secret } from "../lib/secret";
import { capturingLogger } from "./helpers/logs";
import { type RunningSlapd, startSlapd } from "./helpers/slapd";
import { freePort } from "./helpers/sshd";

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
  passwords.push(slapd.adminPassword);
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
  overrides: { ldap?: Partial<VpnConfig["ldap"]>; adminPassword?: string } = {},
): VpnConfig {
  const adminPassword = overrides.adminPassword ?? slapd.adminPassword;
  passwords.push(adminPassword);
  return {
    file: "/etc/laas/vpn.yaml",
    server: "127.0.0.1",
    authentication: { user: slapd.adminDn, pass: new Secret(adminPassword, "/etc/laas/ldap_pass") },
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

function directory(config: VpnConfig): LdapDirectory {
  return new LdapDirectory(config, captured.logger);
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

async function readEntry(dn: string): Promise<Record<string, unknown> | undefined> {
  const { searchEntries } = await admin.search(dn, { scope: "base", attributes: ["*"] });
  return searchEntries[0];
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

  it("hashes passwords as {SSHA} with a fresh salt", () => {
    const password = new Secret("correct horse");
    const first = sshaHash(password);
    const second = sshaHash(password);
    expect(first.startsWith(SSHA_PREFIX)).toBe(true);
    expect(first).not.toBe(second);
    expect(first).not.toContain("correct horse");
    expect(Buffer.from(first.slice(SSHA_PREFIX.length), "base64").length).toBeGreaterThanOrEqual(
      28,
    );
    expect(sshaMatches(password, first)).toBe(true);
    expect(sshaMatches(new Secret("wrong horse"), first)).toBe(false);
    expect(() => sshaHash(password, Buffer.alloc(4))).toThrow(/8 bytes/);
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
  it("creates a marked user with a hashed password the user can bind with", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const user = newUser("jdoe", "4242", {
      fullName: "Jane Q. Doe",
      email: "jane@example.org",
    });
    const account = await dir.createUser(user);
    expect(account).toEqual({ uid: "jdoe", dn: `uid=jdoe,${ou},${slapd.suffix}` });

    const entry = await readEntry(account.dn);
    expect(entry).toBeDefined();
    expect(entry?.objectClass).toEqual(OBJECTS);
    expect(entry?.uid).toBe("jdoe");
    expect(entry?.cn).toBe("Jane Q. Doe");
    expect(entry?.sn).toBe("Doe");
    expect(entry?.mail).toBe("jane@example.org");
    expect(entry?.description).toBe("laas-managed booking=4242");
    const stored = String(entry?.userPassword);
    expect(stored.startsWith("{SSHA}")).toBe(true);
    expect(stored).not.toContain(user.password.reveal());
    expect(sshaMatches(user.password, stored)).toBe(true);

    // slapd itself checks the hash: the user binds with the password, not with another.
    const asUser = new Client({ url: slapd.url, timeout: 5_000 });
    await asUser.bind(account.dn, user.password.reveal());
    await asUser.unbind();
    const wrong = new Client({ url: slapd.url, timeout: 5_000 });
    await expect(wrong.bind(account.dn, "not-the-password")).rejects.toBeInstanceOf(
      InvalidCredentialsError,
    );
    await wrong.unbind();
    await dir.close();
  });

  it("defaults cn and sn to the user name and leaves mail out when there is none", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const account = await dir.createUser(newUser("plain", "7"));
    const entry = await readEntry(account.dn);
    expect(entry?.cn).toBe("plain");
    expect(entry?.sn).toBe("plain");
    expect(entry?.mail).toBeUndefined();
  });

  it("makes names unique: taken, foreign and permanent names are skipped", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const first = await dir.createUser(newUser("alice", "1"));
    const second = await dir.createUser(newUser("alice", "2"));
    expect([first.uid, second.uid]).toEqual(["alice", "alice-2"]);
    expect(second.dn).toBe(`uid=alice-2,${ou},${slapd.suffix}`);

    // Someone else's entry: matched case-insensitively, as the directory compares uids.
    const foreign = await addForeignUser(ou, "Bob");
    const bob = await dir.createUser(newUser("bob", "3"));
    expect(bob.uid).toBe("bob-2");
    expect((await readEntry(foreign))?.description).toBeUndefined();

    // A permanent user's name is never handed out, even while it has no entry.
    const permanent = await dir.createUser(newUser("vpn-admin", "4"));
    expect(permanent.uid).toBe("vpn-admin-2");
    const operator = await dir.createUser(newUser("operator", "5"));
    expect(operator.uid).toBe("operator-2");
  });

  it("gives up with a clear error when every variant is taken", async () => {
    const ou = await freshOu();
    await addForeignUser(ou, "full");
    for (let n = 2; n <= 50; n++) await addForeignUser(ou, `full-${n}`);
    const dir = directory(vpnConfig(ou));
    const error = await failure(dir.createUser(newUser("full", "9")));
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
      const account = await dir.createUser(newUser(name, `h${index}`));
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

    const managed = await dir.listManagedUsers();
    expect(managed.map((user) => user.uid).sort()).toEqual([...hostile].sort());
    // Removal by the DN createUser gave, and by the DN the server lists.
    const byName = new Map(managed.map((user) => [user.uid, user]));
    expect(await dir.removeUser(accounts[0]?.dn ?? "", "h0")).toBe("deleted");
    expect(await dir.removeUser(byName.get("*)(uid=*")?.dn ?? "", "h4")).toBe("deleted");
    expect(await exists(accounts[4]?.dn ?? "")).toBe(false);
    expect((await dir.listManagedUsers()).length).toBe(hostile.length - 2);
    expect(await exists(`uid=zz-bystander,${ou},${slapd.suffix}`)).toBe(true);
  });

  it("refuses names with control characters or over 64 characters, naming the problem only", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    for (const name of ["new\nline", "nul\u0000byte", "tab\tbed", "y".repeat(65)]) {
      const user = newUser(name, "10");
      const error = await failure(dir.createUser(user));
      expect(error).toBeInstanceOf(InvalidUserNameError);
      expect(error.message).toMatch(/control character|characters long/);
      expect(error.message).not.toContain(user.password.reveal());
    }
    const { searchEntries } = await admin.search(`${ou},${slapd.suffix}`, { scope: "one" });
    expect(searchEntries).toEqual([]);
  });

  it("supports the sweep: lists marked entries, removes only its own", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const mine = await dir.createUser(newUser("u1", "b1"));
    const theirs = await dir.createUser(newUser("u2", "b2"));
    const handMade = await addForeignUser(ou, "handmade", "made by the lab admins");
    const lookalike = await addForeignUser(ou, "lookalike", "LAAS-MANAGED booking=b1");
    const permanent = await addForeignUser(ou, "vpn-admin", managedMark("b1"));
    const elsewhere = await freshOu();
    const outside = await addForeignUser(elsewhere, "u1", managedMark("b1"));

    const listed = await dir.listManagedUsers();
    expect(
      listed
        .map(({ uid, bookingId }) => ({ uid, bookingId }))
        .sort((a, b) => a.uid.localeCompare(b.uid)),
    ).toEqual([
      { uid: "u1", bookingId: "b1" },
      { uid: "u2", bookingId: "b2" },
      { uid: "vpn-admin", bookingId: "b1" },
    ]);
    for (const user of listed)
      expect(parseDn(user.dn)[0]).toEqual([{ type: "uid", value: user.uid }]);

    // Another booking's entry, or one nobody marked, is left alone.
    expect(await dir.removeUser(mine.dn, "b2")).toBe("not-managed");
    expect(await dir.removeUser(handMade, "b1")).toBe("not-managed");
    expect(await dir.removeUser(lookalike, "b1")).toBe("not-managed");
    expect(await dir.removeUser(permanent, "b1")).toBe("permanent");
    // Marked, but not in the users directory (nor is the users directory itself a user).
    expect(await dir.removeUser(outside, "b1")).toBe("not-managed");
    expect(await dir.removeUser(`${ou},${slapd.suffix}`, "b1")).toBe("not-managed");
    for (const dn of [mine.dn, handMade, lookalike, permanent, outside]) {
      expect(await exists(dn)).toBe(true);
    }
    expect(captured.lines.some((line) => line.includes("not made by this system"))).toBe(true);
    expect(captured.lines.some((line) => line.includes("marked for another booking"))).toBe(true);

    expect(await dir.removeUser(mine.dn, "b1")).toBe("deleted");
    expect(await exists(mine.dn)).toBe(false);
    expect(await dir.removeUser(mine.dn, "b1")).toBe("absent");
    // The DN as the server spells it, in other case, finds the same entry.
    expect(await dir.removeUser(theirs.dn.toUpperCase().replace("UID=U2", "uid=u2"), "b2")).toBe(
      "deleted",
    );
    expect((await dir.listManagedUsers()).map((user) => user.uid)).toEqual(["vpn-admin"]);
  });

  it("answers absent for a DN whose parent is gone", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    await admin.del(`${ou},${slapd.suffix}`);
    expect(await dir.removeUser(`uid=ghost,${ou},${slapd.suffix}`, "1")).toBe("absent");
  });
});

describe("connection failures", () => {
  it("a wrong bind password is an AuthError naming the bind DN and the server", async () => {
    const ou = await freshOu();
    const wrongPassword = "Wrong-admin-pass-1";
    const dir = directory(vpnConfig(ou, { adminPassword: wrongPassword }));
    const error = await failure(dir.listManagedUsers());
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain(slapd.adminDn);
    expect(error.message).toContain(slapd.ldapsUrl);
    expect(error.message).toContain("invalid credentials");
    expect(error.message).not.toContain(wrongPassword);
    const user = newUser("never-made", "11");
    expect(await failure(dir.createUser(user))).toBeInstanceOf(AuthError);
  });

  it("an empty admin password is refused before any anonymous bind", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou, { adminPassword: "" }));
    const error = await failure(dir.listManagedUsers());
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/authentication\.pass is empty/);
  });

  it("a server that is not there is a TransientError naming the URL", async () => {
    const port = await freePort("127.0.0.1");
    const url = `ldap://127.0.0.1:${port}`;
    const dir = directory(vpnConfig("ou=People", { ldap: { url, startTls: true } }));
    const error = await failure(dir.listManagedUsers());
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
        const error = await failure(dir.listManagedUsers());
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
    const account = await dir.createUser(newUser("over-ldaps", "t1"));
    expect(await dir.listManagedUsers()).toEqual([{ ...account, bookingId: "t1" }]);
  });

  it("StartTLS over ldap:// works", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou, { ldap: { url: slapd.url, startTls: true } }));
    const account = await dir.createUser(newUser("over-starttls", "t2"));
    expect(await dir.removeUser(account.dn, "t2")).toBe("deleted");
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
      const error = await failure(dir.createUser(user));
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
    expect(await dir.listManagedUsers()).toEqual([]);
  });
});

describe("closing and secrets", () => {
  it("close() ends a connection still open", async () => {
    const ou = await freshOu();
    const dir = directory(vpnConfig(ou));
    const started = Date.now();
    const pending = failure(dir.listManagedUsers());
    await dir.close();
    const error = await pending;
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`the connection to ${slapd.ldapsUrl} was closed`);
    expect(Date.now() - started).toBeLessThan(2_000);
    // The directory stays usable: each operation group opens its own connection.
    expect(await dir.listManagedUsers()).toEqual([]);
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
