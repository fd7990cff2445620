/**
 * The notice before the end (lib/lifecycle/end-notice.ts): which bookings are owed one, as a
 * table; then against the lab's real SMTP server — through the listener's polls for bookings
 * provisioned and handed over, and on the store directly for two pollers racing, a claim left by
 * a poller that stopped, and a mail server that defers or refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EndNoticeConfig } from "../lib/config/types";
import type { Booking } from "../lib/domain/booking";
import { TransientError } from "../lib/errors";
import { END_NOTICE_RETRY_MS, endNoticeDue, sendEndNotices } from "../lib/lifecycle/end-notice";
import { newBooking } from "../lib/lifecycle/transitions";
import type { Mailer } from "../lib/ports/mailer";
import { bookingAt } from "../sim/dashboard-sim";
import type { CapturedMail } from "../sim/smtp";
import { dashboardBooking } from "./helpers/bookings";
import { type ListeningHandoverLab, listenOnHandoverLab } from "./helpers/handover-lab";
import { waitFor } from "./helpers/wait";

const HOUR = 3_600_000;
const SLOW = 120_000;
const SETTINGS: EndNoticeConfig = { beforeHours: 48, minBookingHours: 72 };
const NOW = new Date("2024-06-01T12:00:00.000Z");

/** A ready booking of `lengthHours` ending `endsInHours` after NOW. */
function ready(fields: Partial<Booking> & { endsInHours: number; lengthHours?: number }): Booking {
  const { endsInHours, lengthHours = 96, ...rest } = fields;
  const end = new Date(NOW.getTime() + endsInHours * HOUR);
  const booking = newBooking(
    dashboardBooking({
      id: "9",
      hostName: "h1",
      user: "7",
      start: new Date(end.getTime() - lengthHours * HOUR),
      end,
    }),
    NOW,
  );
  return { ...booking, state: "ready", ...rest };
}

describe("which bookings are owed their end notice", () => {
  const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000).toISOString();
  const endIn47 = ready({ endsInHours: 47 }).end;
  const cases: [string, Booking, "send" | "skip" | null][] = [
    ["ready, ending within 48 h", ready({ endsInHours: 47 }), "send"],
    ["ending in 49 h: not yet", ready({ endsInHours: 49 }), null],
    ["ended already", ready({ endsInHours: -1 }), null],
    [
      "shorter than min_booking_hours: recorded skipped",
      ready({ endsInHours: 47, lengthHours: 60 }),
      "skip",
    ],
    ["provisioning", ready({ endsInHours: 47, state: "provisioning" }), null],
    ["failed", ready({ endsInHours: 47, state: "failed" }), null],
    ["released", ready({ endsInHours: 47, state: "released" }), null],
    ["releasing", ready({ endsInHours: 47, state: "releasing" }), null],
    ["vanished from the dashboard", ready({ endsInHours: 47, vanished: true }), null],
    ["manual, no user", ready({ endsInHours: 47, id: "manual-h1-1", user: null }), null],
    ["manual, made for a user", ready({ endsInHours: 47, id: "manual-h1-1" }), "send"],
    [
      "sent for this end",
      ready({
        endsInHours: 47,
        endNotice: { end: endIn47, state: "sent", at: minutesAgo(60), reason: null },
      }),
      null,
    ],
    [
      "skipped for this end",
      ready({
        endsInHours: 47,
        endNotice: { end: endIn47, state: "skipped", at: minutesAgo(60), reason: "x" },
      }),
      null,
    ],
    [
      "sent for an earlier end (extended)",
      ready({
        endsInHours: 47,
        endNotice: {
          end: minutesAgo(60 * 24),
          state: "sent",
          at: minutesAgo(60 * 70),
          reason: null,
        },
      }),
      "send",
    ],
    [
      "claimed a minute ago",
      ready({
        endsInHours: 47,
        endNotice: { end: endIn47, state: "sending", at: minutesAgo(1), reason: null },
      }),
      null,
    ],
    [
      "claimed longer ago than the retry time",
      ready({
        endsInHours: 47,
        endNotice: { end: endIn47, state: "sending", at: minutesAgo(31), reason: null },
      }),
      "send",
    ],
    [
      "failed a minute ago",
      ready({
        endsInHours: 47,
        endNotice: { end: endIn47, state: "failed", at: minutesAgo(1), reason: "451" },
      }),
      null,
    ],
  ];
  it.each(cases)("%s", (_what, booking, expected) => {
    const due = endNoticeDue(booking, SETTINGS, NOW);
    expect(due === null ? null : due.send ? "send" : "skip").toBe(expected);
  });
});

describe("a poll's notices when none is due", () => {
  it("cost no request: not one store, dashboard or mail call", async () => {
    const asked: string[] = [];
    const refuse = (port: string) =>
      new Proxy({}, { get: (_target, name) => () => asked.push(`${port}.${String(name)}`) });
    const sent = ready({ endsInHours: 47 });
    const bookings = [
      ready({ endsInHours: 49 }),
      ready({
        endsInHours: 47,
        lengthHours: 60,
        endNotice: { end: sent.end, state: "skipped", at: NOW.toISOString(), reason: "short" },
      }),
      {
        ...sent,
        endNotice: { end: sent.end, state: "sent" as const, at: NOW.toISOString(), reason: null },
      },
      ready({ endsInHours: 10, state: "failed" }),
    ];
    const config = { dashboard: "http://127.0.0.1:1/", handover: { endNotice: SETTINGS } };
    const outcome = await sendEndNotices(
      {
        config: config as never,
        store: refuse("store") as never,
        dashboard: refuse("dashboard") as never,
        mailer: refuse("mailer") as never,
        logger: refuse("logger") as never,
        now: () => NOW,
      },
      bookings,
    );
    expect(outcome).toEqual({ sent: [], errors: [] });
    expect(asked).toEqual([]);
  });
});

describe("the end notice against the lab's SMTP server", () => {
  let h: ListeningHandoverLab;
  beforeAll(async () => {
    h = await listenOnHandoverLab({ name: "laas-end-notice" });
    h.lab.dashboard.addUser({ id: 7, username: "jdoe", email: "jdoe@example.org" });
  }, SLOW);
  afterAll(async () => h?.close());

  const notices = (): CapturedMail[] =>
    h.smtp.messages.filter((m) => m.subject.startsWith("Your LaaS booking"));

  async function stored(id: string): Promise<Booking> {
    const booking = await h.embedded.runtime.store.getBooking(id);
    if (!booking) throw new Error(`no booking ${id}`);
    return booking;
  }

  function book(id: number, host: number, user: number, start: Date, end: Date): void {
    h.lab.dashboard.removeBooking(id);
    h.lab.dashboard.addBooking(
      bookingAt({
        id,
        resource_id: Number(h.lab.inventory[host]!.resourceId),
        start,
        end,
        installer_name: "Fuel",
        user,
      }),
    );
  }

  /** The deps of a poller at `now`, on the listener's store and the lab's mail server. */
  function poller(now: Date) {
    const { config, store, dashboard, mailer, logger } = h.embedded.runtime;
    return { config, store, dashboard, mailer, logger, now: () => now };
  }

  it(
    "mails a handed-over booking once, none for a short one or a user without address, and again after an extension",
    async () => {
      const now = Date.now();
      const longEnd = new Date(now + 47 * HOUR);
      book(401, 0, 7, new Date(now - 3 * 24 * HOUR), longEnd);
      book(402, 1, 7, new Date(now - 1_000), new Date(now + 10 * 60_000));
      book(403, 2, 99, new Date(now - 3 * 24 * HOUR), new Date(now + 47 * HOUR));
      await h.listener.pollOnce();
      for (const id of ["401", "402", "403"]) {
        await waitFor(
          `booking ${id} ready`,
          async () => {
            const b = await stored(id);
            if (b.state === "failed") throw new Error(`booking ${id} failed: ${b.failure}`);
            if (b.state === "ready" && b.access?.handover !== "pending") return b;
            throw new Error(`${b.state} ${b.progress} ${b.access?.handover}`);
          },
          90_000,
        );
      }
      const handover = h.smtp.messages.find((m) => m.subject.startsWith("Your LaaS pod"));
      expect(notices()).toHaveLength(0);

      const report = await h.listener.pollOnce();
      expect(report?.noticed).toEqual(["401"]);
      expect(notices()).toHaveLength(1);
      const mail = notices()[0]!;
      expect(mail.envelope.to).toEqual(["jdoe@example.org"]);
      expect(mail.subject).toContain(h.lab.inventory[0]!.name);
      const day = longEnd.toISOString();
      expect(mail.text).toMatch(
        new RegExp(`Ends: +\\w+day ${day.slice(0, 10)} ${day.slice(11, 16)} UTC`),
      );
      expect(mail.text).toMatch(/ends in about 4[67] hours/);
      expect(mail.text).toContain("extend the booking on the dashboard");
      expect(mail.text).toContain("its VPN account is deleted");
      // No secret: neither of the hand-over's passwords.
      const passwords = [...(handover?.text.matchAll(/Password:\s+(\S+)$/gm) ?? [])].map(
        (m) => m[1] ?? "",
      );
      expect(passwords.length).toBe(2);
      for (const secret of passwords) expect(mail.raw).not.toContain(secret);
      expect(await stored("401")).toMatchObject({
        endNotice: { end: longEnd.toISOString(), state: "sent", reason: null },
      });

      // The short booking and the user without address: recorded, not mailed.
      expect((await stored("402")).endNotice).toMatchObject({
        state: "skipped",
        reason: expect.stringMatching(
          /lasts 0\.2 h, under handover\.end_notice\.min_booking_hours \(72\)/,
        ),
      });
      const noAddress = await stored("403");
      expect(noAddress.endNotice).toMatchObject({
        state: "skipped",
        reason: 'booking 403: the dashboard does not know its user "99"',
      });

      // Polled again (or by a listener started afresh on the same store): nothing sent or written.
      const versions = await Promise.all(
        ["401", "402", "403"].map(async (id) => (await stored(id)).version),
      );
      expect((await h.listener.pollOnce())?.noticed).toEqual([]);
      expect(notices()).toHaveLength(1);
      expect(
        await Promise.all(["401", "402", "403"].map(async (id) => (await stored(id)).version)),
      ).toEqual(versions);

      // Extended by three days: out of range, no notice yet.
      const extended = new Date(longEnd.getTime() + 72 * HOUR);
      book(401, 0, 7, new Date(now - 3 * 24 * HOUR), extended);
      expect((await h.listener.pollOnce())?.noticed).toEqual([]);
      expect((await stored("401")).end).toBe(extended.toISOString());
      expect(notices()).toHaveLength(1);
      // A later poll, once the new end comes within range: one more notice, for the new end.
      const inRange = new Date(extended.getTime() - 47 * HOUR);
      expect((await sendEndNotices(poller(inRange), [await stored("401")])).sent).toEqual(["401"]);
      expect(notices()).toHaveLength(2);
      expect(notices()[1]!.text).toContain(extended.toISOString().slice(0, 10));
      expect((await stored("401")).endNotice).toMatchObject({
        end: extended.toISOString(),
        state: "sent",
      });

      // Moved earlier, into range: told of that end too.
      const earlier = new Date(now + 30 * HOUR);
      book(401, 0, 7, new Date(now - 3 * 24 * HOUR), earlier);
      expect((await h.listener.pollOnce())?.noticed).toEqual(["401"]);
      expect(notices()).toHaveLength(3);
      expect(notices()[2]!.text).toMatch(/ends in about (29|30) hours/);
    },
    SLOW,
  );

  /** A ready booking put in the store directly (not on the dashboard: no poll may see it). */
  async function readyInStore(id: string, fields: Partial<Booking> = {}): Promise<Booking> {
    const end = new Date(Date.now() + 40 * HOUR);
    const booking: Booking = {
      ...newBooking(
        dashboardBooking({
          id,
          hostName: "nowhere",
          user: "7",
          start: new Date(end.getTime() - 96 * HOUR),
          end,
        }),
        new Date(),
      ),
      state: "ready",
      ...fields,
    };
    expect(await h.embedded.runtime.store.createBooking(booking)).toBe(true);
    return stored(id);
  }

  it("sends one notice when two pollers race on the same reading", async () => {
    const read = await readyInStore("501");
    const before = notices().length;
    const [a, b] = await Promise.all([
      sendEndNotices(poller(new Date()), [read]),
      sendEndNotices(poller(new Date()), [read]),
    ]);
    expect([...a.sent, ...b.sent]).toEqual(["501"]);
    expect(notices().length).toBe(before + 1);
    expect((await stored("501")).endNotice?.state).toBe("sent");
    await h.embedded.runtime.store.deleteBooking("501");
  });

  it("sends again a claim left by a poller that stopped before sending, once its time is up", async () => {
    const now = new Date();
    const first = await readyInStore("502");
    // A poller claimed it and stopped (killed) before its mail and its outcome.
    await h.embedded.runtime.store.updateBooking("502", (b) => ({
      ...b,
      endNotice: { end: first.end, state: "sending", at: now.toISOString(), reason: null },
    }));
    const before = notices().length;
    expect(
      (await sendEndNotices(poller(new Date(now.getTime() + 60_000)), [await stored("502")])).sent,
    ).toEqual([]);
    expect(notices().length).toBe(before);
    const later = new Date(now.getTime() + END_NOTICE_RETRY_MS + 1_000);
    expect((await sendEndNotices(poller(later), [await stored("502")])).sent).toEqual(["502"]);
    expect(notices().length).toBe(before + 1);
    await h.embedded.runtime.store.deleteBooking("502");
  });

  it("records a send's outcome only on its own claim, not on one taken over since", async () => {
    const now = new Date();
    await readyInStore("505");
    const before = notices().length;
    const later = new Date(now.getTime() + END_NOTICE_RETRY_MS + 1_000);
    // This poller's mail hangs past the retry time: another takes the claim over and sends; then
    // this one's mail fails.
    const slow: Mailer = {
      send: async () => {
        expect((await sendEndNotices(poller(later), [await stored("505")])).sent).toEqual(["505"]);
        throw new TransientError("mail server 127.0.0.1 unreachable (ECONNRESET)");
      },
    };
    expect(
      (await sendEndNotices({ ...poller(now), mailer: slow }, [await stored("505")])).sent,
    ).toEqual([]);
    expect(notices().length).toBe(before + 1);
    expect((await stored("505")).endNotice).toMatchObject({
      state: "sent",
      at: later.toISOString(),
    });
    await h.embedded.runtime.store.deleteBooking("505");
  });

  it(
    "tries a deferred notice again later, and does not retry one the server refused",
    async () => {
      const now = new Date();
      await readyInStore("503");
      const before = notices().length;
      // Every attempt of the mailer deferred (it makes three).
      h.smtp.rejectNext(3, { code: 451, stage: "rcpt" });
      expect((await sendEndNotices(poller(now), [await stored("503")])).sent).toEqual([]);
      expect((await stored("503")).endNotice).toMatchObject({
        state: "failed",
        reason: expect.stringContaining("451"),
      });
      expect(
        (await sendEndNotices(poller(new Date(now.getTime() + 60_000)), [await stored("503")]))
          .sent,
      ).toEqual([]);
      const later = new Date(now.getTime() + END_NOTICE_RETRY_MS + 1_000);
      expect((await sendEndNotices(poller(later), [await stored("503")])).sent).toEqual(["503"]);
      expect(notices().length).toBe(before + 1);

      await readyInStore("504");
      h.smtp.rejectNext(1, { code: 550, stage: "rcpt" });
      expect((await sendEndNotices(poller(now), [await stored("504")])).sent).toEqual([]);
      expect((await stored("504")).endNotice).toMatchObject({
        state: "skipped",
        reason: expect.stringContaining("550"),
      });
      expect((await sendEndNotices(poller(later), [await stored("504")])).sent).toEqual([]);
      expect(notices().length).toBe(before + 1);
      h.smtp.acceptAll();
      for (const id of ["503", "504"]) await h.embedded.runtime.store.deleteBooking(id);
    },
    SLOW,
  );
});
