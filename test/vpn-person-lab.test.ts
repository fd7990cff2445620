/**
 * One VPN account per person through the real workflows, on the simulated lab with slapd, an
 * SMTP server and the listener: two bookings of one dashboard user, booked at once, share one
 * directory entry; one hand-over carries its password, the other says it is unchanged; the entry
 * goes only when the last of them ends, whichever ends first.
 */
import { Client, EqualityFilter } from "ldapts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Booking } from "../lib/domain/booking";
import { bookingAt } from "../sim/dashboard-sim";
import type { CapturedMail } from "../sim/smtp";
import { type ListeningHandoverLab, listenOnHandoverLab } from "./helpers/handover-lab";
import { waitFor } from "./helpers/wait";

const SLOW = 180_000;

let h: ListeningHandoverLab;

beforeAll(async () => {
  h = await listenOnHandoverLab({ name: "laas-vpn-person" });
  h.lab.dashboard.addUser({ id: 7, username: "ada", email: "ada@example.org" });
}, SLOW);
afterAll(async () => h?.close());

function book(id: number, host: number): void {
  const now = Date.now();
  h.lab.dashboard.addBooking(
    bookingAt({
      id,
      resource_id: Number(h.lab.inventory[host]!.resourceId),
      start: new Date(now - 1_000),
      end: new Date(now + 10 * 60_000),
      installer_name: "Fuel",
      scenario_name: "os-nosdn-nofeature-ha",
      purpose: "one account per person",
      user: 7,
    }),
  );
}

function until(id: string, what: string, test: (b: Booking) => boolean): Promise<Booking> {
  return waitFor(
    `booking ${id}: ${what}`,
    async () => {
      const booking = await h.embedded.runtime.store.getBooking(id);
      if (booking?.state === "failed") throw new Error(`booking ${id} failed: ${booking.failure}`);
      return booking && test(booking) ? booking : undefined;
    },
    90_000,
  );
}

function handoverOf(id: string): CapturedMail {
  const mail = h.smtp.messages.find(
    (m) =>
      m.subject.startsWith("Your LaaS pod") && /^\s+Booking:\s+(\S+)$/m.exec(m.text)?.[1] === id,
  );
  if (!mail) throw new Error(`no hand-over of booking ${id}`);
  return mail;
}

/** The VPN password printed in a hand-over, or null when it names the account unchanged. */
function vpnPassword(mail: CapturedMail): string | null {
  const vpn = mail.text.slice(mail.text.indexOf("VPN\n---"), mail.text.indexOf("Logging in"));
  return /^\s+Password:\s+(\S+)$/m.exec(vpn)?.[1] ?? null;
}

async function adaEntries(): Promise<string[]> {
  const admin = await h.slapd.adminClient();
  try {
    const { searchEntries } = await admin.search(h.slapd.usersBase, {
      scope: "sub",
      filter: new EqualityFilter({ attribute: "objectClass", value: "inetOrgPerson" }),
      attributes: ["uid"],
    });
    return searchEntries.map((e) => String(e.uid)).filter((uid) => uid.startsWith("ada"));
  } finally {
    await admin.unbind();
  }
}

async function bindsAs(dn: string, password: string): Promise<boolean> {
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

async function end(id: string): Promise<void> {
  h.lab.dashboard.removeBooking(Number(id));
  await h.listener.pollOnce();
  await until(id, "released", (b) => b.state === "released");
}

describe("two bookings of one dashboard user, through the workflows", () => {
  for (const [first, second, ending] of [
    ["401", "402", "the one that made the account first"],
    ["403", "404", "the other one first"],
  ] as const) {
    it(
      `share one account, which goes with the last to end (${ending})`,
      async () => {
        book(Number(first), 0);
        book(Number(second), 1);
        await h.listener.pollOnce();
        const [a, b] = await Promise.all(
          [first, second].map((id) =>
            until(id, "hand-over delivered", (x) => x.access?.handover === "delivered"),
          ),
        );
        // Booked at once, one of them made the account; the other holds it too.
        const maker = a!.access?.vpnAccountFrom;
        expect([first, second]).toContain(maker);
        expect(b!.access?.vpnAccountFrom).toBe(maker);
        const other = maker === first ? second : first;
        expect(a!.access?.vpnUser).toBe("ada");
        expect(b!.access?.vpnUser).toBe("ada");
        expect(await adaEntries()).toEqual(["ada"]);
        const person = await h.embedded.runtime.store.getVpnPerson(a!.access!.vpnPerson!);
        expect(person?.bookings.sort()).toEqual([first, second]);
        const dn = person!.dn!;

        // The maker's hand-over has the password; the other's says the account is unchanged.
        const password = vpnPassword(handoverOf(maker!));
        expect(password).not.toBeNull();
        expect(await bindsAs(dn, password!)).toBe(true);
        const unchanged = handoverOf(other);
        expect(vpnPassword(unchanged)).toBeNull();
        expect(unchanged.text).toContain(
          `Your VPN account ada is unchanged: use the password you were given with booking ${maker}.`,
        );
        expect(unchanged.text).not.toContain(password!);

        const [ends, last] = first === "401" ? [maker!, other] : [other, maker!];
        await end(ends);
        expect(await adaEntries()).toEqual(["ada"]);
        expect(await bindsAs(dn, password!)).toBe(true);
        await end(last);
        expect(await adaEntries()).toEqual([]);
        expect(await h.embedded.runtime.store.getVpnPerson(person!.key)).toMatchObject({
          bookings: [],
          dn: null,
          retiring: [],
        });
      },
      SLOW,
    );
  }
});
