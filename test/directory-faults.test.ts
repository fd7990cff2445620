/**
 * The LDAP directory adapter when the directory or the network fails: a slapd of this file's own
 * (stopped and started again, frozen with SIGSTOP) behind a TCP fault proxy that refuses
 * connections or cuts one right before the server's answer to a chosen request reaches the
 * client — the request was carried out, its answer lost. Each test pins one classification or
 * one retry; the last block pins the result codes on ldapts's own error classes.
 */
import {
  AlreadyExistsError,
  BusyError,
  Client,
  ConstraintViolationError,
  EqualityFilter,
  InsufficientAccessError,
  InvalidCredentialsError,
  NoSuchObjectError,
  TimeLimitExceededError,
  UnavailableError,
  UnwillingToPerformError,
} from "ldapts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { classifyLdapError, DirectoryError } from "../lib/adapters/ldap/errors";
import { LdapDirectory, managedMark } from "../lib/adapters/ldap/ldap-directory";
import { NO_RETRY, type RetryPolicy } from "../lib/adapters/retry";
import type { VpnConfig } from "../lib/config/types";
import { AuthError, ConfigError, OutcomeUnknownError, TransientError } from "../lib/errors";
import type { IntendedVpnUser, NewVpnUser } from "../lib/ports/directory";
import { Secret } from "../lib/secret";
import { type RunningSlapd, startSlapd } from "../sim/slapd";
import { capturingLogger } from "./helpers/logs";
import { type FaultProxy, startFaultProxy } from "./helpers/tcp-fault-proxy";

const FAST_RETRY: RetryPolicy = { retries: 2, minDelayMs: 50, maxDelayMs: 200, maxRetryMs: 10_000 };
const OBJECTS = ["top", "person", "organizationalPerson", "inetOrgPerson"];

/** LDAP protocol operation tags (RFC 4511, [APPLICATION n]). */
const OP = {
  searchResultDone: 0x65,
  addResponse: 0x69,
  delResponse: 0x6b,
  extendedResponse: 0x78,
} as const;

let slapd: RunningSlapd;
let admin: Client;
let proxy: FaultProxy;
let ouCount = 0;
const captured = capturingLogger("debug");
const passwords: string[] = [];

beforeAll(async () => {
  slapd = await startSlapd();
  admin = await slapd.adminClient();
  proxy = await startFaultProxy({
    target: { host: "127.0.0.1", port: Number(new URL(slapd.url).port) },
  });
}, 900_000);

afterAll(async () => {
  await admin?.unbind().catch(() => undefined);
  await proxy?.close();
  await slapd?.stop();
});

afterEach(async () => {
  proxy.intercept(null);
  proxy.release();
  await proxy.accept();
});

async function freshOu(): Promise<string> {
  ouCount += 1;
  const rdn = `ou=f${ouCount}`;
  await admin.add(`${rdn},${slapd.suffix}`, {
    objectClass: ["top", "organizationalUnit"],
    ou: `f${ouCount}`,
  });
  return rdn;
}

/** Plain ldap:// through the proxy: the proxy must see the LDAP messages to cut at one. */
function directory(
  usersRdn: string,
  retry: RetryPolicy = FAST_RETRY,
  timeoutSeconds = 5,
): LdapDirectory {
  return new LdapDirectory(vpnConfig(usersRdn, proxy, timeoutSeconds), captured.logger, {
    retry,
  });
}

function vpnConfig(
  usersRdn: string,
  at: { host: string; port: number },
  timeoutSeconds: number,
): VpnConfig {
  return {
    file: "/etc/laas/vpn.yaml",
    server: "127.0.0.1",
    authentication: { user: slapd.adminDn, pass: new Secret(slapd.adminPassword) },
    directory: { root: slapd.suffix, user: usersRdn },
    user: { objects: OBJECTS },
    database: "/var/lib/laas/vpn",
    permanentUsers: [],
    ldap: {
      url: `ldap://${at.host}:${at.port}`,
      startTls: false,
      caPem: null,
      verifyCertificate: true,
      timeoutSeconds,
    },
  };
}

function newUser(preferredName: string, bookingId: string): NewVpnUser {
  const password = `Vpn-${bookingId}-${Math.random().toString(36).slice(2)}`;
  passwords.push(password);
  return {
    bookingId,
    preferredName,
    fullName: null,
    email: null,
    password: new Secret(password),
  };
}

/** createUser, keeping what it announces. */
async function create(dir: LdapDirectory, user: NewVpnUser, announced: IntendedVpnUser[] = []) {
  return dir.createUser(user, async (name) => {
    announced.push(name);
  });
}

/** The protocol operation tags of the LDAP messages in a chunk (BER: SEQUENCE, id, op). */
function ldapOps(chunk: Buffer): number[] {
  const ops: number[] = [];
  let at = 0;
  while (at + 2 < chunk.length && chunk[at] === 0x30) {
    let length = chunk[at + 1] ?? 0;
    let start = at + 2;
    if (length & 0x80) {
      const bytes = length & 0x7f;
      length = 0;
      for (let i = 0; i < bytes; i++) length = length * 256 + (chunk[start + i] ?? 0);
      start += bytes;
    }
    // messageID: INTEGER (0x02, short length), then the operation's tag.
    const idLength = chunk[start + 1] ?? 0;
    const op = chunk[start + 2 + idLength];
    if (op !== undefined) ops.push(op);
    at = start + length;
  }
  return ops;
}

/** Cuts the connection right before the server's `op` answer reaches the client. */
function loseAnswer(op: number): Promise<Buffer> {
  return proxy.cutWhen("toClient", (chunk) => ldapOps(chunk).includes(op));
}

async function labelled(usersRdn: string, bookingId: string): Promise<string[]> {
  const { searchEntries } = await admin.search(`${usersRdn},${slapd.suffix}`, {
    scope: "sub",
    filter: new EqualityFilter({ attribute: "description", value: managedMark(bookingId) }),
    attributes: ["uid"],
  });
  return searchEntries.map((entry) => String(entry.uid)).sort();
}

async function canBind(dn: string, password: Secret): Promise<boolean> {
  const client = new Client({ url: slapd.url, timeout: 5_000 });
  try {
    await client.bind(dn, password.reveal());
    return true;
  } catch (error) {
    if (error instanceof InvalidCredentialsError) return false;
    throw error;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`not an Error: ${String(error)}`);
  }
  throw new Error("expected a failure, but it succeeded");
}

describe("an add whose answer was lost", () => {
  it("is recognised as this call's own on the retry: kept, not made again as name-2", async () => {
    const ou = await freshOu();
    const user = newUser("ada", "501");
    const announced: IntendedVpnUser[] = [];
    const lost = loseAnswer(OP.addResponse);
    const account = await create(directory(ou), user, announced);
    await lost;
    expect(account.uid).toBe("ada");
    expect(await labelled(ou, "501")).toEqual(["ada"]);
    // Announced once: the retry found the entry of its first add before announcing anything.
    expect(announced.map((a) => a.dn)).toEqual([account.dn]);
    expect(await canBind(account.dn, user.password)).toBe(true);
    expect(captured.lines.join("\n")).toContain("answer was lost: kept");
  });

  it("without retries, is an OutcomeUnknownError (it may have been done)", async () => {
    const ou = await freshOu();
    const lost = loseAnswer(OP.addResponse);
    const error = await failure(create(directory(ou, NO_RETRY), newUser("bea", "502")));
    await lost;
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error.name).toBe("TransientError");
    expect(error.message).toContain("may have been done");
    // It was: the workflow's next attempt adopts it by the DN it recorded (lib/lifecycle).
    expect(await labelled(ou, "502")).toEqual(["bea"]);
  });

  it("an entry at a DN the call never announced is not taken for its own, label or not", async () => {
    const ou = await freshOu();
    const dir = directory(ou);
    const user = newUser("cy", "503");
    // The first attempt's search answer is lost, before it announced anything; then an entry
    // appears at the name, even labelled for the booking and made by the same account (the
    // admin): only a DN this call announced can be its own, so the retry takes the next name.
    const lost = loseAnswer(OP.searchResultDone);
    const made = create(dir, user);
    await lost;
    await admin.add(`uid=cy,${ou},${slapd.suffix}`, {
      objectClass: OBJECTS,
      uid: "cy",
      cn: "cy",
      sn: "cy",
      description: managedMark("503"),
    });
    const account = await made;
    expect(account.uid).toBe("cy-2");
  });
});

describe("reads and other writes whose answer was lost", () => {
  it("a lost search answer is a TransientError, not an OutcomeUnknownError", async () => {
    const ou = await freshOu();
    const lost = loseAnswer(OP.searchResultDone);
    const error = await failure(create(directory(ou, NO_RETRY), newUser("dee", "504")));
    await lost;
    expect(error).toBeInstanceOf(TransientError);
    expect(error).not.toBeInstanceOf(OutcomeUnknownError);
    expect(await labelled(ou, "504")).toEqual([]);
  });

  it("a delete whose answer was lost is looked at again: the entry is gone, and that is all", async () => {
    const ou = await freshOu();
    const dir = directory(ou);
    const account = await create(dir, newUser("eve", "505"));
    const lost = loseAnswer(OP.delResponse);
    const outcome = await dir.removeUser({ dn: account.dn, entryUUID: account.entryUUID }, "505");
    await lost;
    expect(["deleted", "absent"]).toContain(outcome);
    expect(await labelled(ou, "505")).toEqual([]);
  });

  it("a Password Modify whose answer was lost (adoption) is sent again", async () => {
    const ou = await freshOu();
    const dir = directory(ou);
    const first = newUser("fay", "506");
    const account = await create(dir, first);
    const password = new Secret(`Adopted-${Math.random().toString(36).slice(2)}`);
    passwords.push(password.reveal());
    const lost = loseAnswer(OP.extendedResponse);
    const adopted = await dir.adoptUser(account.dn, "506", password);
    await lost;
    expect(adopted).toEqual(account);
    expect(await canBind(account.dn, password)).toBe(true);
  });

  it("without retries, a lost Password Modify answer is an OutcomeUnknownError", async () => {
    const ou = await freshOu();
    const account = await create(directory(ou), newUser("gus", "507"));
    const lost = loseAnswer(OP.extendedResponse);
    const error = await failure(
      directory(ou, NO_RETRY).adoptUser(account.dn, "507", new Secret("Other-pass-1")),
    );
    await lost;
    expect(error).toBeInstanceOf(OutcomeUnknownError);
  });
});

describe("a directory that is down or hung for a while", () => {
  it("refusing connections for a moment: the user is made once it accepts again", async () => {
    const ou = await freshOu();
    const refusing = proxy.refuseFor(400);
    const account = await create(
      directory(ou, { ...FAST_RETRY, retries: 5, minDelayMs: 150 }),
      newUser("hal", "508"),
    );
    await refusing;
    expect(account.uid).toBe("hal");
  });

  it("close() ends the retrying: no attempt is started after the next one", async () => {
    const ou = await freshOu();
    // Accepted and reset at once, as by a directory that is down: every attempt is counted.
    const dead = await startFaultProxy({ target: { host: "127.0.0.1", port: 1 } });
    try {
      const dir = new LdapDirectory(vpnConfig(ou, dead, 5), captured.logger, {
        retry: { retries: 8, minDelayMs: 300, maxDelayMs: 300, maxRetryMs: 20_000 },
      });
      const made = failure(create(dir, newUser("max", "513")));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await dir.close();
      expect(await made).toBeInstanceOf(TransientError);
      expect(dead.accepted).toBeLessThanOrEqual(2);
    } finally {
      await dead.close();
    }
  });

  it("slapd stopped and started again: the removal goes through once it is back", async () => {
    const ou = await freshOu();
    const dir = directory(ou, { retries: 6, minDelayMs: 200, maxDelayMs: 500, maxRetryMs: 20_000 });
    const account = await create(dir, newUser("ida", "509"));
    await slapd.down();
    const back = new Promise((resolve) => setTimeout(resolve, 1_000)).then(() => slapd.up());
    try {
      expect(await dir.removeUser({ dn: account.dn, entryUUID: account.entryUUID }, "509")).toBe(
        "deleted",
      );
    } finally {
      await back;
    }
    admin = await slapd.adminClient();
    expect(await labelled(ou, "509")).toEqual([]);
  });

  it("slapd stopped: without retries a TransientError naming the server", async () => {
    const ou = await freshOu();
    await slapd.down();
    try {
      const error = await failure(create(directory(ou, NO_RETRY), newUser("jo", "510")));
      expect(error).toBeInstanceOf(TransientError);
      expect(error.message).toContain(`ldap://${proxy.host}:${proxy.port}`);
    } finally {
      await slapd.up();
      admin = await slapd.adminClient();
    }
  });

  it("slapd hung past the timeout (SIGSTOP), then going on: the next attempt succeeds", async () => {
    const ou = await freshOu();
    const dir = directory(ou, { ...FAST_RETRY, retries: 4 }, 1);
    slapd.pause();
    const resumed = new Promise((resolve) => setTimeout(resolve, 1_500)).then(() => slapd.resume());
    try {
      const account = await create(dir, newUser("kit", "511"));
      expect(account.uid).toBe("kit");
    } finally {
      await resumed;
    }
    expect(captured.lines.join("\n")).toMatch(/Operation timed out|Connection timeout/);
  });

  it("slapd hung: without retries, a TransientError once the timeout is up", async () => {
    const ou = await freshOu();
    slapd.pause();
    try {
      const started = Date.now();
      const error = await failure(create(directory(ou, NO_RETRY, 1), newUser("lou", "512")));
      expect(error).toBeInstanceOf(TransientError);
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      slapd.resume();
    }
  });
});

describe("what each failure is classed as", () => {
  const at = 'LDAP add of "uid=x,ou=People,dc=example" on ldap://ldap.lab:389';
  const cases: Array<
    [string, unknown, new (...args: never[]) => Error, (new (...args: never[]) => Error)?]
  > = [
    ["busy (51)", new BusyError("busy"), TransientError],
    ["unavailable (52)", new UnavailableError("shutting down"), TransientError],
    ["unwillingToPerform (53)", new UnwillingToPerformError("overloaded"), TransientError],
    ["timeLimitExceeded (3)", new TimeLimitExceededError(), TransientError],
    [
      "unwillingToPerform: no global superior knowledge",
      new UnwillingToPerformError("no global superior knowledge"),
      ConfigError,
    ],
    ["invalidCredentials (49)", new InvalidCredentialsError(), AuthError],
    ["insufficientAccessRights (50)", new InsufficientAccessError(), AuthError],
    ["noSuchObject (32)", new NoSuchObjectError(), DirectoryError],
    ["entryAlreadyExists (68)", new AlreadyExistsError(), DirectoryError],
    ["constraintViolation (19)", new ConstraintViolationError(), DirectoryError],
    [
      "an add's connection closed before its answer",
      new Error(
        "Connection closed before message response was received. Message type: AddRequest (0x68)",
      ),
      OutcomeUnknownError,
    ],
    [
      "a delete's socket error",
      new Error("Socket error. Message type: DeleteRequest (0x4a)\nread ECONNRESET"),
      OutcomeUnknownError,
    ],
    [
      "a Password Modify timed out",
      new Error("ExtendedRequest: Operation timed out"),
      OutcomeUnknownError,
    ],
    [
      "a search's socket error",
      new Error("Socket error. Message type: SearchRequest (0x63)\nread ECONNRESET"),
      TransientError,
      OutcomeUnknownError,
    ],
    [
      "a bind timed out",
      new Error("BindRequest: Operation timed out"),
      TransientError,
      OutcomeUnknownError,
    ],
    ["a connect timeout", new Error("Connection timeout"), TransientError, OutcomeUnknownError],
    [
      "connection refused",
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:389"), { code: "ECONNREFUSED" }),
      TransientError,
      OutcomeUnknownError,
    ],
  ];
  for (const [what, error, expected, not] of cases) {
    it(`${what}: ${expected.name}${not ? `, not ${not.name}` : ""}`, () => {
      const classified = classifyLdapError(error, at);
      expect(classified).toBeInstanceOf(expected);
      if (not) expect(classified).not.toBeInstanceOf(not);
      expect(classified.message).toContain(at);
    });
  }
});

describe("secrets", () => {
  it("no password appears in any log line", () => {
    const text = captured.lines.join("\n");
    for (const password of [...passwords, slapd.adminPassword]) {
      expect(text).not.toContain(password);
    }
  });
});
