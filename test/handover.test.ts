import { join } from "node:path";
import { Client, EqualityFilter } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stepHandlers } from "../functions/steps";
import { openCredentials, sealCredentials } from "../lib/access/sealed";
import { LdapDirectory } from "../lib/adapters/ldap/ldap-directory";
import type { Booking, BookingAccess } from "../lib/domain/booking";
import { createVpnUser, undoAccess } from "../lib/lifecycle/access";
import { changeAccess, emptyAccess } from "../lib/lifecycle/access-transitions";
import { sweepExpiredBookings, sweepVpnUsers } from "../lib/lifecycle/sweep";
import { beginProvisioning, newBooking } from "../lib/lifecycle/transitions";
import { acquirePersonAccount, personKey } from "../lib/lifecycle/vpn-person";
import type { PhaseInput } from "../lib/ports/engine";
import { Secret } from "../lib/secret";
import { bookingAt } from "../sim/dashboard-sim";
import { repoRoot } from "../sim/lab";
import type { CapturedMail } from "../sim/smtp";
import { generateSshKey } from "../sim/sshd";
import { runCommand } from "../sim/subprocess";
import { dashboardBooking } from "./helpers/bookings";
import { type ListeningHandoverLab, listenOnHandoverLab } from "./helpers/handover-lab";
import { waitFor } from "./helpers/wait";

const SLOW = 180_000;
/** How often a failed delivery is tried again here (the ASL waits a minute, then longer). */
const RETRY_MS = 100;

type Harness = ListeningHandoverLab;

/**
 * What a workflow's execution history holds — and the state machines' logs, which include every
 * state's input and output (serverless.yml, loggingConfig): each step's input, its result or its
 * error, and what the watcher completes a wait with. Everything in a state's input or output comes
 * from these and the execution's input.
 */
const history: string[] = [];

const recordingHandlers = Object.fromEntries(
  Object.entries(stepHandlers).map(([name, handler]) => [
    name,
    async (event: never): Promise<unknown> => {
      history.push(`${name} input ${JSON.stringify(event)}`);
      try {
        const result = await (handler as (event: unknown) => Promise<unknown>)(event);
        history.push(`${name} result ${JSON.stringify(result)}`);
        return result;
      } catch (error) {
        history.push(`${name} error ${String(error)}`);
        throw error;
      }
    },
  ]),
);

const harness = async (): Promise<Harness> => {
  const h = await listenOnHandoverLab({
    name: "laas-handover",
    handover: { permanentUsers: ["admin"], operators: ["lab-ops@lab.example.org"] },
    listen: { retryOverridesMs: { HandOver: RETRY_MS }, handlers: recordingHandlers },
  });
  const { engine } = h.embedded;
  const succeed = engine.sendTaskSuccess.bind(engine);
  const fail = engine.sendTaskFailure.bind(engine);
  engine.sendTaskSuccess = (token, output) => {
    history.push(`wait completed ${JSON.stringify(output)}`);
    return succeed(token, output);
  };
  engine.sendTaskFailure = (token, error, cause) => {
    history.push(`wait failed ${error} ${cause}`);
    return fail(token, error, cause);
  };
  return h;
};

function book(h: Harness, id: number, resourceId: string, user: number, minutes = 10): void {
  const now = Date.now();
  h.lab.dashboard.addBooking(
    bookingAt({
      id,
      resource_id: Number(resourceId),
      start: new Date(now - 1_000),
      end: new Date(now + minutes * 60_000),
      installer_name: "Fuel",
      scenario_name: "os-nosdn-nofeature-ha",
      purpose: "hand-over <b>test</b>",
      user,
    }),
  );
}

async function stored(h: Harness, id: string): Promise<Booking> {
  const booking = await h.embedded.runtime.store.getBooking(id);
  if (!booking) throw new Error(`no booking ${id}`);
  return booking;
}

function until(h: Harness, id: string, what: string, test: (b: Booking) => boolean) {
  return waitFor(
    `booking ${id}: ${what}`,
    async () => {
      const booking = await h.embedded.runtime.store.getBooking(id);
      return booking && test(booking) ? booking : undefined;
    },
    90_000,
  );
}

/** The value printed after `label` in the message's text ("    Password:   …"). */
function field(mail: CapturedMail, label: string, nth = 0): string {
  const values = [...mail.text.matchAll(new RegExp(`^\\s+${label}:\\s+(\\S+)$`, "gm"))].map(
    (m) => m[1] ?? "",
  );
  const value = values[nth];
  if (!value) throw new Error(`no "${label}" #${nth} in the message`);
  return value;
}

/** The hand-overs sent, credentials and all (the operators' notices and failure mails apart). */
function handovers(h: Harness): CapturedMail[] {
  return h.smtp.messages.filter((m) => m.subject.startsWith("Your LaaS pod"));
}

/** The operators' notices about booking `id`'s hand-over. */
function notices(h: Harness, id: string): CapturedMail[] {
  return h.smtp.messages.filter((m) => m.subject.startsWith(`LaaS: hand-over of booking ${id} `));
}

/** The record of the person whose account the booking holds. */
async function personOf(h: Harness, booking: Booking) {
  const key = booking.access?.vpnPerson;
  if (!key) throw new Error(`booking ${booking.id} holds no person's VPN account`);
  const person = await h.embedded.runtime.store.getVpnPerson(key);
  if (!person) throw new Error(`no VPN person ${key}`);
  return person;
}

async function vpnEntry(h: Harness, uid: string) {
  const admin = await h.slapd.adminClient();
  try {
    const { searchEntries } = await admin.search(h.slapd.usersBase, {
      scope: "one",
      filter: new EqualityFilter({ attribute: "uid", value: uid }),
      attributes: ["*", "entryUUID"],
    });
    return searchEntries;
  } finally {
    await admin.unbind();
  }
}

/** The uids of the entries labelled for the booking, wherever they are below the users base. */
async function labelledFor(h: Harness, bookingId: string): Promise<string[]> {
  const admin = await h.slapd.adminClient();
  try {
    const { searchEntries } = await admin.search(h.slapd.usersBase, {
      scope: "sub",
      filter: new EqualityFilter({
        attribute: "description",
        value: `laas-managed booking=${bookingId}`,
      }),
      attributes: ["uid"],
    });
    return searchEntries.map((entry) => String(entry.uid)).sort();
  } finally {
    await admin.unbind();
  }
}

/** An entry the lab's admins make by hand, under the users base. */
async function addByHand(h: Harness, uid: string, description?: string): Promise<string> {
  const dn = `uid=${uid},${h.slapd.usersBase}`;
  const admin = await h.slapd.adminClient();
  try {
    await admin.add(dn, {
      objectClass: ["top", "inetOrgPerson"],
      uid,
      cn: uid,
      sn: uid,
      ...(description ? { description } : {}),
    });
    return dn;
  } finally {
    await admin.unbind();
  }
}

/** A booking of user `user` in provisioning (generation 1) on the third host, and its input. */
async function provisioning(h: Harness, id: string, user: string) {
  const host = h.lab.inventory[2]!;
  const booking = newBooking(
    dashboardBooking({
      id,
      resourceId: host.resourceId,
      hostName: host.name,
      installer: "Fuel",
      user,
    }),
    new Date(),
  );
  await h.embedded.runtime.store.createBooking(booking);
  await h.embedded.runtime.store.updateBooking(id, beginProvisioning);
  return { bookingId: id, hostName: host.name, phase: "provision", generation: 1 } as const;
}

/** What CreateVpnUser records before its add: the DN it is about to add. */
async function intendOnBooking(h: Harness, input: PhaseInput, dn: string): Promise<void> {
  await h.embedded.runtime.store.updateBooking(
    input.bookingId,
    changeAccess("provision", input.generation, (access) => ({ ...access, vpnIntendedDn: dn })),
  );
}

/** The test's booking ends: its VPN user is taken back as a failed provision's is. */
async function endAndTakeBack(h: Harness, id: string): Promise<void> {
  const input = { bookingId: id, hostName: "", phase: "provision", generation: 1 } as const;
  await undoAccess(h.embedded.runtime, input).catch(() => undefined);
  await h.embedded.runtime.store.updateBooking(id, (b) => ({
    ...b,
    state: "failed",
    failure: "test over",
  }));
}

async function bindsAs(h: Harness, dn: string, password: string): Promise<boolean> {
  const client = new Client({ url: h.slapd.url, timeout: 5_000 });
  try {
    await client.startTLS({ ca: h.slapd.caPem });
    await client.bind(dn, password);
    return true;
  } catch {
    return false;
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

/**
 * Every place a secret must never be: log lines, stored items, dashboard notes, the workflows'
 * history (the steps' inputs, results and errors, the waits' outcomes).
 */
async function secretScan(h: Harness, secrets: string[]): Promise<string[]> {
  const { store } = h.embedded.runtime;
  const places: [string, string][] = [
    ...h.lines.map((line, i): [string, string] => [`log line ${i}`, line]),
    ...history.map((entry, i): [string, string] => [`history ${i}`, entry]),
    ...(await store.listBookings()).map((b): [string, string] => [
      `booking ${b.id}`,
      JSON.stringify(b),
    ]),
    ...(await store.listHosts()).map((x): [string, string] => [
      `host ${x.name}`,
      JSON.stringify(x),
    ]),
    ...h.lab.dashboard.statusNotes.map((n): [string, string] => [
      `status note ${n.id}`,
      JSON.stringify(n),
    ]),
  ];
  return places.flatMap(([where, text]) =>
    secrets.filter((s) => text.includes(s)).map(() => where),
  );
}

describe("handing a pod over and taking it back", () => {
  let h: Harness;
  let userKey: Awaited<ReturnType<typeof generateSshKey>>;
  /** The VPN password of rsmith's account, as booking 302's hand-over gave it. */
  let rsmithPassword = "";
  beforeAll(async () => {
    h = await harness();
    userKey = await generateSshKey("jdoe@laptop");
    h.lab.dashboard.addUser({
      id: 7,
      username: "jdoe",
      email: "jdoe@example.org",
      first_name: "Jane",
      last_name: "Doe",
      ssh_public_key: userKey.publicKey,
    });
    h.lab.dashboard.addUser({ id: 8, username: "rsmith", email: "rsmith@example.org" });
    h.lab.dashboard.addUser({ id: 11, username: "kay", email: "kay@example.org" });
  }, SLOW);
  afterAll(async () => h?.close());

  it(
    "gives the user working access in one message, takes it back at release, and leaks no secret",
    async () => {
      const host = h.lab.inventory[0]!;
      book(h, 301, host.resourceId, 7);
      expect((await h.listener.pollOnce())?.started).toEqual(["booking-301-provision-1"]);
      const ready = await until(h, "301", "hand-over delivered", (b) => {
        if (b.state === "failed") throw new Error(`booking failed: ${b.failure}`);
        return b.access?.handover === "delivered";
      });
      expect(ready.state).toBe("ready");

      // One message, to the user alone, with everything in it.
      expect(handovers(h)).toHaveLength(1);
      const mail = handovers(h)[0]!;
      expect(mail.secure).toBe(true);
      expect(mail.envelope.to).toEqual(["jdoe@example.org"]);
      expect(mail.to).toEqual(["jdoe@example.org"]);
      expect(mail.cc).toEqual([]);
      expect(mail.subject).toContain(host.name);
      expect(field(mail, "Host")).toBe(host.name);
      expect(field(mail, "Address")).toBe(host.address);
      expect(field(mail, "Installer")).toBe("Fuel");
      expect(field(mail, "Scenario")).toBe("os-nosdn-nofeature-ha");
      expect(field(mail, "Server")).toBe("127.0.0.1");
      expect(field(mail, "User name")).toBe("jdoe");
      expect(mail.text).toContain(`ssh root@${host.address}`);
      expect(mail.text).toContain(userKey.fingerprint);
      expect(mail.html).toContain("hand-over &lt;b&gt;test&lt;/b&gt;");
      const vpnPassword = field(mail, "Password", 0);
      const rootPassword = field(mail, "Password", 1);
      expect(vpnPassword).not.toBe(rootPassword);
      expect(vpnPassword.length).toBeGreaterThanOrEqual(20);

      // The operators are told that it went — booking, host, user, recipients, time — and get
      // none of its credentials: the only other message there is.
      const notice = await waitFor("the operators' notice", () => notices(h, "301")[0]);
      expect(h.smtp.messages).toHaveLength(2);
      expect(notice.envelope.to).toEqual(["lab-ops@lab.example.org"]);
      expect(notice.to).toEqual(["lab-ops@lab.example.org"]);
      expect(notice.subject).toBe(`LaaS: hand-over of booking 301 (${host.name}) sent`);
      expect(notice.text).toContain(`Host:       ${host.name}`);
      expect(notice.text).toContain("User:       Jane Doe (jdoe)");
      expect(notice.text).toContain("Sent to:    jdoe@example.org");
      expect(notice.text).toMatch(/When: {7}\w+day \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
      for (const secret of [vpnPassword, rootPassword]) {
        expect(notice.raw).not.toContain(secret);
        expect(notice.text).not.toContain(secret);
      }
      expect(notice.text).not.toMatch(/Password:/);

      // The VPN account works with the password sent, and is marked as made for this booking.
      const [entry] = await vpnEntry(h, "jdoe");
      expect(entry?.description).toBe("laas-managed booking=301");
      // Hashed by slapd's own scheme (Password Modify), and recorded with the server's entryUUID
      // on the person's record, which this booking holds (the account is jdoe's, not the
      // booking's: the booking records no entry of its own).
      expect(String(entry?.userPassword).startsWith(h.slapd.passwordScheme)).toBe(true);
      expect(await personOf(h, ready)).toMatchObject({
        uid: "jdoe",
        dn: entry?.dn,
        entryUuid: entry?.entryUUID,
        madeFor: "301",
        bookings: ["301"],
      });
      expect(ready.access).toMatchObject({ vpnUserDn: null, vpnAccountFrom: "301" });
      expect(await bindsAs(h, entry!.dn, vpnPassword)).toBe(true);
      expect(await bindsAs(h, entry!.dn, rootPassword)).toBe(false);

      // The host has the root password and the user's key.
      const shell = h.lab.hosts.shell(host.name);
      expect(shell.passwords.get("root")).toBe(rootPassword);
      expect(shell.authorizedKeys.get("root")?.join("\n")).toContain(
        userKey.publicKey.split(" ")[1],
      );
      expect(ready.access).toMatchObject({
        vpnUser: "jdoe",
        rootPasswordSet: true,
        sshKey: `installed ${userKey.fingerprint}`,
        sealedCredentials: null,
        handover: "delivered",
      });

      // The dashboard heard of each stage, without secrets.
      const notes = () =>
        h.lab.dashboard.statusNotes
          .filter((n) => n.resource === Number(host.resourceId))
          .map((n) => `${n.type} ${n.title}`);
      expect(notes()).toEqual(["info Booking 301: provisioning", "info Booking 301: ready"]);

      // The booking ends: the VPN user goes, the host is reimaged clean.
      h.lab.dashboard.removeBooking(301);
      await h.listener.pollOnce();
      const released = await until(h, "301", "released", (b) => b.state === "released");
      expect(await vpnEntry(h, "jdoe")).toEqual([]);
      expect(released.access).toMatchObject({
        vpnUser: null,
        vpnUserDn: null,
        vpnEntryUuid: null,
        vpnIntendedDn: null,
        vpnPerson: null,
      });
      // Its last booking let go: the person's record holds no account.
      expect(await personOf(h, ready)).toMatchObject({ bookings: [], dn: null, retiring: [] });
      expect(h.lab.hosts.shell(host.name).passwords.size).toBe(0);
      await waitFor("released note", () =>
        notes().includes("info Booking 301: released") ? true : undefined,
      );

      const secrets = [vpnPassword, rootPassword, h.slapd.adminPassword];
      expect(await secretScan(h, secrets)).toEqual([]);
      // The scan finds what is there: a piece of a logged line, and of a stored booking.
      expect(await secretScan(h, [h.lines[5]!.slice(-30, -10)])).toContain("log line 5");
      expect(await secretScan(h, ['"hostName":'])).toContain("booking 301");
      // The history scanned is the whole hand-over and release.
      for (const step of ["createVpnUser", "setHostAccess", "handOver", "revokeAccess"]) {
        expect(
          history.some((entry) => entry.startsWith(`${step} result `)),
          step,
        ).toBe(true);
      }
      expect(history.some((entry) => entry.startsWith("wait completed "))).toBe(true);
      const inHistory = await secretScan(h, ['"bookingId":"301"']);
      expect(inHistory.some((place) => place.startsWith("history "))).toBe(true);
      // The scan can fail: the lines do hold what was logged about this booking.
      expect(h.lines.some((line) => line.includes("VPN account made for the person"))).toBe(true);
      expect(h.lines.some((line) => line.includes("hand-over delivered"))).toBe(true);
    },
    SLOW,
  );

  it(
    "retries a delivery the mail server defers, and keeps the pod ready while it does",
    async () => {
      const host = h.lab.inventory[1]!;
      const before = handovers(h).length;
      h.smtp.rejectNext(2, { code: 451, stage: "rcpt" });
      book(h, 302, host.resourceId, 8);
      await h.listener.pollOnce();
      const delivered = await until(h, "302", "hand-over delivered", (b) => {
        if (b.state === "failed") throw new Error(`booking failed: ${b.failure}`);
        return b.access?.handover === "delivered";
      });
      expect(delivered.state).toBe("ready");
      expect(handovers(h)).toHaveLength(before + 1);
      const mail = handovers(h).at(-1)!;
      expect(mail.to).toEqual(["rsmith@example.org"]);
      // rsmith's first booking: their account is made, its password in this message.
      expect(delivered.access?.vpnAccountFrom).toBe("302");
      rsmithPassword = field(mail, "Password", 0);
      expect(await bindsAs(h, (await personOf(h, delivered)).dn!, rsmithPassword)).toBe(true);
      // No key on the dashboard: the message says so, and password login is offered.
      expect(mail.text).toContain("the dashboard has no SSH public key for you");
      expect(delivered.access?.sshKey).toBe("none given");
      // The operators' notice follows the delivery (and is not what the next test's refusals meet).
      await waitFor("the operators' notice", () => notices(h, "302")[0]);
      expect(h.lines.some((l) => l.includes("HandOver") || l.includes("hand-over"))).toBe(true);
    },
    SLOW,
  );

  it(
    "records a delivery that gives up, keeps the pod, and `laas handover` sends it later",
    async () => {
      const host = h.lab.inventory[2]!;
      const before = handovers(h).length;
      // The first try and its six retries are all deferred: each try is three SMTP
      // transactions (the mailer's own retries, DEFAULT_SMTP_RETRY).
      h.smtp.rejectNext(7 * 3, { code: 451, stage: "rcpt" });
      book(h, 303, host.resourceId, 8);
      await h.listener.pollOnce();
      const undelivered = await until(h, "303", "hand-over given up", (b) => {
        if (b.state === "failed") throw new Error(`booking failed: ${b.failure}`);
        return b.access?.handover === "undelivered";
      });
      expect(undelivered.state).toBe("ready");
      expect(undelivered.access?.handoverError).toMatch(/TransientError: .*451/);
      expect(undelivered.access?.sealedCredentials).toMatch(/^v2\.MzAz\./);
      expect(handovers(h)).toHaveLength(before);

      // `laas handover`, as an operator runs it next to the listener: another process, which
      // reaches the listener's store through its endpoint.
      const laas = (...args: string[]) =>
        runCommand(process.execPath, [join(repoRoot, "bin", "laas.mjs"), ...args], {
          cwd: repoRoot,
        });
      // Credentials sealed for another booking, put on this one, do not open: nothing is sent.
      const { store } = h.embedded.runtime;
      const key = h.embedded.runtime.config.handover!.sealingKey;
      const own = undelivered.access!.sealedCredentials!;
      const moved = sealCredentials(key, "302", openCredentials(key, "303", own));
      const withSealed = (sealedCredentials: string) => (b: Booking) => ({
        ...b,
        access: { ...b.access!, sealedCredentials },
      });
      await store.updateBooking("303", withSealed(moved));
      const refused = await laas("handover", "303", "--config", h.lab.configPath);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(
        'booking 303: the sealed credentials on it say they were sealed for booking "302"',
      );
      expect(refused.stderr).not.toContain(moved.split(".").at(-1));
      expect(handovers(h)).toHaveLength(before);
      await store.updateBooking("303", withSealed(own));
      const sentOnce = await laas("handover", "303", "--config", h.lab.configPath);
      expect(sentOnce.stderr).toBe("");
      expect(sentOnce.code).toBe(0);
      expect(sentOnce.stdout).toContain("hand-over sent to rsmith@example.org");
      expect(handovers(h)).toHaveLength(before + 1);
      // The operators were told when it gave up, and again when it went.
      expect(notices(h, "303").map((m) => m.subject.split(" ").at(-1))).toEqual([
        "delivered",
        "sent",
      ]);
      const sent = await stored(h, "303");
      expect(sent.access).toMatchObject({ handover: "delivered", sealedCredentials: null });
      // rsmith's second booking holds the account booking 302 made: one entry, its password
      // unchanged (the one 302's hand-over gave), none in this message; the root password sent
      // is the one set.
      const mail = handovers(h).at(-1)!;
      expect(mail.text).toContain(
        "Your VPN account rsmith is unchanged: use the password you were given with booking 302.",
      );
      expect(mail.text).not.toContain(rsmithPassword);
      expect(sent.access).toMatchObject({ vpnUser: "rsmith", vpnAccountFrom: "302" });
      const person = await personOf(h, sent);
      expect(person.bookings.sort()).toEqual(["302", "303"]);
      expect(await vpnEntry(h, "rsmith")).toHaveLength(1);
      expect(await vpnEntry(h, "rsmith-2")).toEqual([]);
      expect(await labelledFor(h, "303")).toEqual([]);
      expect(await bindsAs(h, person.dn!, rsmithPassword)).toBe(true);
      expect(h.lab.hosts.shell(host.name).passwords.get("root")).toBe(field(mail, "Password", 0));
      // Sending twice is refused.
      const again = await laas("handover", "303", "--config", h.lab.configPath);
      expect(again.code).toBe(3);
      expect(again.stderr).toContain("delivered already");
    },
    SLOW,
  );

  it(
    "takes back the VPN user of a provision that fails after making it",
    async () => {
      // The first host is free again since booking 301 ended.
      const host = h.lab.inventory[0]!;
      // Booked by kay, whose account no other booking holds: this one makes it.
      // The look-ups of user 11 by poll (its name, at the door) and by CreateVpnUser are
      // answered; the next one (SetHostAccess) is refused, which no retry fixes: the provision
      // fails after the VPN user exists.
      let lookups = 0;
      h.lab.dashboard.onRequest(({ method, path }) => {
        if (method === "GET" && path === "/api/users/11/" && ++lookups === 3) {
          h.lab.dashboard.failNext(1, 403, { body: '{"detail":"Forbidden."}' });
        }
      });
      book(h, 304, host.resourceId, 11);
      await h.listener.pollOnce();
      const failed = await until(h, "304", "failed", (b) => b.state === "failed");
      expect(lookups).toBeGreaterThanOrEqual(3);
      expect(failed.failure).toMatch(/dashboard refused the token \(403\)/);
      // The entry was made, and is gone again.
      const made = h.lines
        .map((line) => JSON.parse(line) as { bookingId?: string; msg?: string; vpnUser?: string })
        .find((line) => line.bookingId === "304" && line.msg === "VPN account made for the person");
      expect(made?.vpnUser).toBe("kay");
      expect(await vpnEntry(h, "kay")).toEqual([]);
      // rsmith's account, held by bookings 302 and 303, is not touched.
      expect(await vpnEntry(h, "rsmith")).toHaveLength(1);
      expect(h.lines.some((l) => l.includes('"state":"UndoAccess"'))).toBe(true);
      expect(failed.access?.vpnUserDn ?? null).toBeNull();
      expect(failed.access?.vpnPerson ?? null).toBeNull();
      // Touched: cleaned, its first failure in a row counted.
      expect(await h.embedded.runtime.store.getHost(host.name)).toMatchObject({
        state: "cleaning",
        failures: 1,
      });
      const note = await waitFor("failed note", () =>
        h.lab.dashboard.statusNotes.find(
          (n) => n.type === "error" && n.title === "Booking 304: provisioning failed",
        ),
      );
      // The public is told the kind of failure; the operators get the error itself.
      expect(note.content).toBe(
        `${host.name} could not be provisioned: access could not be set up. The lab's operators have been told.`,
      );
      expect(note.content).not.toContain("403");
      const report = await waitFor("the operators' failure mail", () =>
        h.smtp.messages.find((m) => m.subject.startsWith("LaaS: booking 304 provision failed")),
      );
      expect(report.to).toEqual(["lab-ops@lab.example.org"]);
      expect(report.text).toContain("dashboard refused the token (403)");
      expect(report.text).toContain("Host now:   cleaning");
    },
    SLOW,
  );

  it("adopts the VPN entry an attempt made but recorded only the DN of, under the same name", async () => {
    const { runtime } = h.embedded;
    h.lab.dashboard.addUser({ id: 9, username: "grace", email: "grace@example.org" });
    h.lab.dashboard.addUser({ id: 10, username: "hopper", email: "hopper@example.org" });
    const directory = new LdapDirectory(runtime.config.cleanConfig.vpn, runtime.logger);
    try {
      const input = await provisioning(h, "399", "9");
      // The earlier attempt recorded the DN before its add, made the entry (with a password
      // nobody kept) and died before it could record the entryUUID.
      const earlier = await directory.createUser(
        {
          bookingId: "399",
          preferredName: "grace",
          fullName: null,
          email: null,
          password: new Secret("A-password-that-was-lost-1"),
        },
        (name) => intendOnBooking(h, input, name.dn),
      );
      expect(await createVpnUser(runtime, input)).toEqual({ done: true });
      const made = await stored(h, "399");
      // One account: the entry the earlier attempt made, now with the password kept for delivery.
      expect(await labelledFor(h, "399")).toEqual(["grace"]);
      expect(made.access).toMatchObject({
        vpnUser: "grace",
        vpnUserDn: earlier.dn,
        vpnEntryUuid: earlier.entryUUID,
        vpnIntendedDn: null,
      });
      const sealed = made.access?.sealedCredentials ?? "";
      const { vpnPassword } = openCredentials(runtime.config.handover!.sealingKey, "399", sealed);
      expect(await bindsAs(h, earlier.dn, vpnPassword!)).toBe(true);
      expect(await bindsAs(h, earlier.dn, "A-password-that-was-lost-1")).toBe(false);
      expect(
        h.lines.some((line) => line.includes("VPN user of an interrupted attempt adopted")),
      ).toBe(true);
      // Run again, it finds the account on record and makes nothing.
      expect(await createVpnUser(runtime, input)).toEqual({ done: true });
      expect(await labelledFor(h, "399")).toEqual(["grace"]);

      // The DN on record holds an entry the lab's admins made meanwhile: not adopted (no label,
      // no password set on it), and the user gets another name.
      const second = await provisioning(h, "398", "10");
      const handMade = await addByHand(h, "hopper");
      await intendOnBooking(h, second, handMade);
      expect(await createVpnUser(runtime, second)).toEqual({ done: true });
      expect((await stored(h, "398")).access?.vpnUser).toBe("hopper-2");
      expect(await vpnEntry(h, "hopper")).toMatchObject([{ dn: handMade }]);
      expect((await vpnEntry(h, "hopper"))[0]?.userPassword).toBeUndefined();
      expect(await labelledFor(h, "398")).toEqual(["hopper-2"]);
    } finally {
      await directory.close();
      for (const id of ["399", "398"]) await endAndTakeBack(h, id);
    }
  });

  it("takes back an entry whose DN alone was recorded when the provision fails", async () => {
    const { runtime } = h.embedded;
    const directory = new LdapDirectory(runtime.config.cleanConfig.vpn, runtime.logger);
    try {
      const input = await provisioning(h, "397", "10");
      const interrupted = await directory.createUser(
        {
          bookingId: "397",
          preferredName: "hopper",
          fullName: null,
          email: null,
          password: new Secret("Interrupted-password-1"),
        },
        (name) => intendOnBooking(h, input, name.dn),
      );
      expect(await undoAccess(runtime, input)).toEqual({ vpnUser: "deleted" });
      expect(await labelledFor(h, "397")).toEqual([]);
      expect((await stored(h, "397")).access).toMatchObject({
        vpnUserDn: null,
        vpnIntendedDn: null,
      });
      expect(await vpnEntry(h, interrupted.uid)).toEqual([]);
    } finally {
      await directory.close();
      await endAndTakeBack(h, "397");
    }
  });

  it("gets a dashboard user's account once: a step run again after recording it asks nothing of the directory", async () => {
    const { runtime } = h.embedded;
    h.lab.dashboard.addUser({ id: 12, username: "lin", email: "lin@example.org" });
    const input = await provisioning(h, "396", "12");
    try {
      expect(await createVpnUser(runtime, input)).toEqual({ done: true });
      const made = await stored(h, "396");
      expect(made.access).toMatchObject({ vpnUser: "lin", vpnAccountFrom: "396", vpnUserDn: null });
      expect((await personOf(h, made)).bookings).toEqual(["396"]);
      // The directory unreachable now: the account is on the booking, nothing more is asked.
      const directoryFor = runtime.directoryFor;
      runtime.directoryFor = () => {
        throw new Error("the directory must not be asked again");
      };
      try {
        expect(await createVpnUser(runtime, input)).toEqual({ done: true });
      } finally {
        runtime.directoryFor = directoryFor;
      }
      expect(await undoAccess(runtime, input)).toEqual({ vpnUser: "deleted" });
      expect(await vpnEntry(h, "lin")).toEqual([]);
    } finally {
      await endAndTakeBack(h, "396");
    }
  });

  it("lets go of the account it got when the run ended before recording it on the booking", async () => {
    const { runtime } = h.embedded;
    h.lab.dashboard.addUser({ id: 13, username: "mia", email: "mia@example.org" });
    const input = await provisioning(h, "395", "13");
    const { store } = runtime;
    const updateVpnPerson = store.updateVpnPerson;
    // The run fails right after the account is recorded on the person's record.
    store.updateVpnPerson = async (key, change) => {
      const updated = await updateVpnPerson.call(store, key, change);
      if (updated.item.entryUuid !== null && updated.item.bookings.includes("395")) {
        await store.updateBooking("395", (b) => ({ ...b, state: "failed", failure: "test" }));
      }
      return updated;
    };
    try {
      await expect(createVpnUser(runtime, input)).rejects.toThrow(
        /the run that got the VPN account ended/,
      );
    } finally {
      store.updateVpnPerson = updateVpnPerson;
    }
    expect(await vpnEntry(h, "mia")).toEqual([]);
    const failed = await stored(h, "395");
    expect((await personOf(h, failed)).bookings).toEqual([]);
    await endAndTakeBack(h, "395");
  });

  it("sweeps exactly the entries recorded for bookings that are over", {
    timeout: 60_000,
  }, async () => {
    const { runtime } = h.embedded;
    const directory = new LdapDirectory(runtime.config.cleanConfig.vpn, runtime.logger);
    const made = async (name: string, bookingId: string) =>
      directory.createUser(
        {
          bookingId,
          preferredName: name,
          fullName: null,
          email: null,
          password: new Secret("Sweep-test-password-1"),
        },
        async () => undefined,
      );
    /** A booking that is over (failed), whose record names what `access` says. */
    const over = async (id: string, access: Partial<BookingAccess>) => {
      const host = h.lab.inventory[2]!;
      await runtime.store.createBooking(
        newBooking(
          dashboardBooking({ id, resourceId: host.resourceId, hostName: host.name }),
          new Date(),
        ),
      );
      await runtime.store.updateBooking(id, (b) => ({
        ...b,
        state: "failed",
        failure: "test",
        access: { ...emptyAccess(), ...access },
      }));
    };
    try {
      // Recorded with its entryUUID: goes.
      const orphan = await made("orphan", "990");
      await over("990", {
        vpnUser: "orphan",
        vpnUserDn: orphan.dn,
        vpnEntryUuid: orphan.entryUUID,
      });
      // Only its DN recorded, the attempt interrupted after the add: goes (labelled for the
      // booking and made by LaaS's account).
      const interrupted = await made("interrupted", "991");
      await over("991", { vpnIntendedDn: interrupted.dn });
      // Recorded, then deleted behind LaaS's back and made again under the same DN and label.
      const replaced = await made("replaced", "992");
      await over("992", {
        vpnUser: "replaced",
        vpnUserDn: replaced.dn,
        vpnEntryUuid: replaced.entryUUID,
      });
      const client = await h.slapd.adminClient();
      await client.del(replaced.dn);
      await client.unbind();
      await addByHand(h, "replaced", "laas-managed booking=992");
      // Labelled as LaaS's, but no booking records it: not LaaS's to remove.
      await made("unrecorded", "989");
      // An entry nobody labelled: made by the lab's own administrators.
      await addByHand(h, "foreign");

      const report = await sweepVpnUsers(runtime);
      expect(report.removed.sort()).toEqual([orphan.dn, interrupted.dn].sort());
      expect(report.declined).toEqual([{ dn: replaced.dn, outcome: "replaced" }]);
      expect(await vpnEntry(h, "orphan")).toEqual([]);
      expect(await vpnEntry(h, "interrupted")).toEqual([]);
      for (const uid of ["replaced", "unrecorded", "foreign"]) {
        expect(await vpnEntry(h, uid)).toHaveLength(1);
      }
      // Bookings 302 and 303 are ready: the one account they hold (rsmith's) stays.
      expect(await vpnEntry(h, "rsmith")).toHaveLength(1);
      expect(await vpnEntry(h, "rsmith-2")).toEqual([]);
      expect(report.kept).toBe(1);
      // What was dealt with is forgotten: the next sweep does not look at it again.
      for (const id of ["990", "991", "992"]) {
        expect((await stored(h, id)).access).toMatchObject({
          vpnUserDn: null,
          vpnIntendedDn: null,
        });
      }

      // `laas sweep`, as an operator runs it next to the listener, does the same.
      const another = await made("orphan", "993");
      await over("993", {
        vpnUser: "orphan",
        vpnUserDn: another.dn,
        vpnEntryUuid: another.entryUUID,
      });
      const swept = await runCommand(
        process.execPath,
        [join(repoRoot, "bin", "laas.mjs"), "sweep", "--config", h.lab.configPath],
        { cwd: repoRoot },
      );
      expect(swept.stderr).toBe("");
      expect(swept.code).toBe(0);
      expect(swept.stdout).toContain(`removed ${another.dn}`);
      expect(swept.stdout).toMatch(/sweep: 1 removed, 1 in use/);
      expect(await vpnEntry(h, "unrecorded")).toHaveLength(1);
      expect(await vpnEntry(h, "foreign")).toHaveLength(1);
    } finally {
      await directory.close();
    }
  });
  it("sweeps the people's accounts: bookings over or gone let go, the last out removes the entry", {
    timeout: 60_000,
  }, async () => {
    const { runtime } = h.embedded;
    const vpn = runtime.config.cleanConfig.vpn;
    const directory = new LdapDirectory(vpn, runtime.logger);
    const acquire = (user: string, name: string, bookingId: string) =>
      acquirePersonAccount(
        runtime,
        directory,
        {
          key: personKey(vpn, user),
          user,
          bookingId,
          newUser: { preferredName: name, fullName: null, email: null },
          password: async () => new Secret("Sweep-person-password-1"),
        },
        runtime.logger,
      );
    /** A record naming `dn` as the account of `user`, held by booking `bookingId` (gone). */
    const recordNaming = async (user: string, uid: string, dn: string, bookingId: string) => {
      const key = personKey(vpn, user);
      await runtime.store.createVpnPerson({
        key,
        user,
        uid,
        dn,
        entryUuid: null,
        intendedDn: null,
        madeFor: bookingId,
        bookings: [bookingId],
        retiring: [],
        updatedAt: new Date().toISOString(),
        version: 0,
      });
      return key;
    };
    try {
      // Booking 981 is over and still names its user's account.
      const over = await acquire("21", "sweepa", "981");
      const host = h.lab.inventory[2]!;
      await runtime.store.createBooking(
        newBooking(
          dashboardBooking({ id: "981", resourceId: host.resourceId, hostName: host.name }),
          new Date(),
        ),
      );
      await runtime.store.updateBooking("981", (b) => ({
        ...b,
        state: "failed",
        failure: "test",
        access: { ...emptyAccess(), vpnUser: "sweepa", vpnPerson: personKey(vpn, "21") },
      }));
      // Booking 982 is gone from the store, its id still on the record.
      const gone = await acquire("22", "sweepb", "982");
      // A permanent user's entry and one LaaS did not make, named by records of bookings gone.
      const permanent = await addByHand(h, "admin", "laas-managed booking=983");
      await recordNaming("23", "admin", permanent, "983");
      const foreign = await addByHand(h, "outsider");
      await recordNaming("24", "outsider", foreign, "984");
      // Booking 985 noted its user's account and failed before it joined the record.
      await runtime.store.createBooking(
        newBooking(
          dashboardBooking({ id: "985", resourceId: host.resourceId, hostName: host.name }),
          new Date(),
        ),
      );
      await runtime.store.updateBooking("985", (b) => ({
        ...b,
        state: "failed",
        failure: "test",
        access: { ...emptyAccess(), vpnPerson: personKey(vpn, "25") },
      }));

      // Expired, and still holding the account: the expiry sweep keeps it for the directory's.
      await runtime.store.updateBooking("981", (b) => ({ ...b, expiresAtEpochSeconds: 1 }));
      expect((await sweepExpiredBookings(runtime)).kept).toContain("981");
      expect(await runtime.store.getBooking("981")).not.toBeNull();

      const report = await sweepVpnUsers(runtime);
      expect(report.removed).toEqual(expect.arrayContaining([over.dn, gone.dn]));
      expect(report.declined).toEqual(
        expect.arrayContaining([
          { dn: permanent, outcome: "permanent" },
          { dn: foreign, outcome: "not-managed" },
        ]),
      );
      expect(await vpnEntry(h, "sweepa")).toEqual([]);
      expect(await vpnEntry(h, "sweepb")).toEqual([]);
      expect(await vpnEntry(h, "admin")).toHaveLength(1);
      expect(await vpnEntry(h, "outsider")).toHaveLength(1);
      // rsmith's account, held by the ready bookings 302 and 303, stays.
      expect(await vpnEntry(h, "rsmith")).toHaveLength(1);
      for (const user of ["21", "22", "23", "24"]) {
        expect(await runtime.store.getVpnPerson(personKey(vpn, user))).toMatchObject({
          bookings: [],
          dn: null,
          retiring: [],
        });
      }
      expect((await stored(h, "981")).access?.vpnPerson).toBeNull();
      expect((await stored(h, "985")).access?.vpnPerson).toBeNull();
      // Let go of, the booking goes with its retention.
      expect((await sweepExpiredBookings(runtime)).deleted).toContain("981");
      // Nothing is left to do: the next sweep removes nothing.
      const again = await sweepVpnUsers(runtime);
      expect(again.removed).toEqual([]);
      expect(again.declined).toEqual([]);
    } finally {
      await directory.close();
    }
  });

  it("sweeps the accounts of a job's other users a booking held, and those it only noted", {
    timeout: 60_000,
  }, async () => {
    const { runtime } = h.embedded;
    const vpn = runtime.config.cleanConfig.vpn;
    const directory = new LdapDirectory(vpn, runtime.logger);
    try {
      // Booking 986 is over and holds a collaborator's account; 987 noted one and never joined.
      const held = await acquirePersonAccount(
        runtime,
        directory,
        {
          key: personKey(vpn, "26"),
          user: "26",
          bookingId: "986",
          newUser: { preferredName: "sweepc", fullName: null, email: null },
          password: async () => new Secret("Sweep-person-password-2"),
        },
        runtime.logger,
      );
      const host = h.lab.inventory[2]!;
      for (const [id, user, uid] of [
        ["986", "26", "sweepc"],
        ["987", "27", null],
      ] as const) {
        await runtime.store.createBooking(
          newBooking(
            dashboardBooking({ id, resourceId: host.resourceId, hostName: host.name }),
            new Date(),
          ),
        );
        await runtime.store.updateBooking(id, (b) => ({
          ...b,
          state: "failed",
          failure: "test",
          expiresAtEpochSeconds: 1,
          access: {
            ...emptyAccess(),
            vpnOthers: [{ user, person: personKey(vpn, user), uid, accountFrom: uid && id }],
          },
        }));
      }
      // Expired, and still holding (or naming) an account: kept for the directory's sweep.
      expect((await sweepExpiredBookings(runtime)).kept).toEqual(
        expect.arrayContaining(["986", "987"]),
      );
      const report = await sweepVpnUsers(runtime);
      expect(report.removed).toContain(held.dn);
      expect(await vpnEntry(h, "sweepc")).toEqual([]);
      for (const id of ["986", "987"]) {
        expect((await stored(h, id)).access?.vpnOthers).toEqual([]);
      }
      expect((await sweepExpiredBookings(runtime)).deleted).toEqual(
        expect.arrayContaining(["986", "987"]),
      );
    } finally {
      await directory.close();
    }
  });
});
