/**
 * One VPN account per person (lib/lifecycle/vpn-person.ts) on the real slapd and the embedded
 * store: two bookings of one user share the account, which goes with the later of them to end,
 * in either order and when both end at once; a permanent user and an entry LaaS did not make are
 * never touched.
 */
import { EqualityFilter } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LdapDirectory } from "../lib/adapters/ldap/ldap-directory";
import { NO_RETRY } from "../lib/adapters/retry";
import type { VpnConfig } from "../lib/config/types";
import { acquirePersonAccount, personKey, releasePersonAccount } from "../lib/lifecycle/vpn-person";
import { Secret } from "../lib/secret";
import { type RunningSlapd, startSlapd } from "../sim/slapd";
import { startTestStore, type TestStore } from "./helpers/dynalite";
import { capturingLogger } from "./helpers/logs";

let slapd: RunningSlapd;
let db: TestStore;
let ous = 0;
const { logger } = capturingLogger("debug");

beforeAll(async () => {
  [slapd, db] = await Promise.all([startSlapd(), startTestStore()]);
}, 900_000);
afterAll(async () => {
  await Promise.allSettled([slapd?.stop(), db?.close()]);
});

async function freshConfig(): Promise<VpnConfig> {
  ous += 1;
  const admin = await slapd.adminClient();
  await admin.add(`ou=p${ous},${slapd.suffix}`, { objectClass: ["top", "organizationalUnit"] });
  await admin.unbind();
  return {
    file: "/etc/laas/vpn.yaml",
    server: "127.0.0.1",
    authentication: { user: slapd.adminDn, pass: new Secret(slapd.adminPassword) },
    directory: { root: slapd.suffix, user: `ou=p${ous}` },
    user: { objects: ["top", "person", "organizationalPerson", "inetOrgPerson"] },
    database: "/var/lib/laas/vpn",
    permanentUsers: ["ops"],
    ldap: {
      url: slapd.ldapsUrl,
      startTls: false,
      caPem: slapd.caPem,
      verifyCertificate: true,
      timeoutSeconds: 5,
    },
  };
}

async function uids(vpn: VpnConfig): Promise<string[]> {
  const admin = await slapd.adminClient();
  try {
    const { searchEntries } = await admin.search(`${vpn.directory.user},${vpn.directory.root}`, {
      scope: "one",
      filter: new EqualityFilter({ attribute: "objectClass", value: "inetOrgPerson" }),
      attributes: ["uid"],
    });
    return searchEntries.map((e) => String(e.uid)).sort();
  } finally {
    await admin.unbind();
  }
}

async function addByHand(vpn: VpnConfig, uid: string): Promise<void> {
  const admin = await slapd.adminClient();
  await admin.add(`uid=${uid},${vpn.directory.user},${vpn.directory.root}`, {
    objectClass: ["top", "inetOrgPerson"],
    uid,
    cn: uid,
    sn: uid,
  });
  await admin.unbind();
}

function setUp(vpn: VpnConfig, user: string, name = user) {
  const directory = new LdapDirectory(vpn, logger, { retry: NO_RETRY });
  const key = personKey(vpn, user);
  const rt = { store: db.store };
  const passwords: string[] = [];
  const acquire = (bookingId: string) =>
    acquirePersonAccount(
      rt,
      directory,
      {
        key,
        user,
        bookingId,
        newUser: { preferredName: name, fullName: null, email: null },
        password: async () => {
          passwords.push(bookingId);
          return new Secret(`Person-pass-${bookingId}-1`);
        },
      },
      logger,
    );
  const release = (bookingId: string) =>
    releasePersonAccount(rt, directory, key, bookingId, logger);
  return { directory, key, acquire, release, passwords };
}

describe("one VPN account per person", () => {
  for (const order of [
    ["1", "2"],
    ["2", "1"],
  ] as const) {
    it(`is shared by two overlapping bookings and goes with the last (ending ${order.join(", ")})`, async () => {
      const vpn = await freshConfig();
      const p = setUp(vpn, "11", "ada");
      try {
        const first = await p.acquire("1");
        const second = await p.acquire("2");
        expect(first).toMatchObject({ uid: "ada", made: true, madeFor: "1" });
        expect(second).toMatchObject({ uid: "ada", made: false, madeFor: "1" });
        // Run twice, each step does nothing more.
        expect(await p.acquire("2")).toEqual(second);
        expect(p.passwords).toEqual(["1"]);
        expect(await uids(vpn)).toEqual(["ada"]);
        expect(await p.release(order[0])).toBe("kept");
        expect(await p.release(order[0])).toBe("kept");
        expect(await uids(vpn)).toEqual(["ada"]);
        expect(await p.release(order[1])).toBe("deleted");
        expect(await uids(vpn)).toEqual([]);
        expect(await db.store.getVpnPerson(p.key)).toMatchObject({ bookings: [], retiring: [] });
        // A later booking gets a new account under the same name.
        expect(await p.acquire("3")).toMatchObject({ uid: "ada", made: true, madeFor: "3" });
        await p.release("3");
      } finally {
        await p.directory.close();
      }
    });
  }

  it("is removed exactly once when both bookings end at the same moment", async () => {
    const vpn = await freshConfig();
    const p = setUp(vpn, "12", "bob");
    try {
      await p.acquire("1");
      await p.acquire("2");
      const outcomes = await Promise.all([p.release("1"), p.release("2")]);
      // Each write applies to the record as it is: one of them leaves the other holding it, the
      // other is the last out and removes the entry.
      expect(outcomes.sort()).toEqual(["deleted", "kept"]);
      expect(await uids(vpn)).toEqual([]);
      expect(await db.store.getVpnPerson(p.key)).toMatchObject({ bookings: [], retiring: [] });
    } finally {
      await p.directory.close();
    }
  });

  it("never touches a permanent user's entry or one LaaS did not make", async () => {
    const vpn = await freshConfig();
    await addByHand(vpn, "ops");
    await addByHand(vpn, "carol");
    const ops = setUp(vpn, "13", "ops");
    const carol = setUp(vpn, "14", "carol");
    try {
      expect(await ops.acquire("1")).toMatchObject({ uid: "ops-2", made: true });
      expect(await carol.acquire("2")).toMatchObject({ uid: "carol-2", made: true });
      expect(await uids(vpn)).toEqual(["carol", "carol-2", "ops", "ops-2"]);
      await Promise.all([ops.release("1"), carol.release("2")]);
      expect(await uids(vpn)).toEqual(["carol", "ops"]);
    } finally {
      await Promise.all([ops.directory.close(), carol.directory.close()]);
    }
  });
});
