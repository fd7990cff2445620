import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCredentials } from "../lib/access/sealed";
import { type Booking, manualBookingId } from "../lib/domain/booking";
import { handoverRecipients } from "../lib/handover/recipients";
import { bookingAt } from "../sim/dashboard-sim";
import { repoRoot } from "../sim/lab";
import type { CapturedMail } from "../sim/smtp";
import { runCommand } from "../sim/subprocess";
import { type ListeningHandoverLab, listenOnHandoverLab } from "./helpers/handover-lab";
import { waitFor } from "./helpers/wait";

const SLOW = 180_000;
const OPERATORS = ["lab-ops@lab.example.org", "oncall@lab.example.org"];

describe("handoverRecipients", () => {
  const user = { username: "jdoe", fullName: null, email: "jdoe@example.org", sshPublicKey: null };

  it("sends a dashboard booking's hand-over to its user alone", () => {
    expect(handoverRecipients({ id: "42", user: "7" }, user, OPERATORS)).toEqual({
      ok: true,
      to: ["jdoe@example.org"],
    });
  });

  it("sends it to nobody else when the dashboard gives no address, and says what clears it", () => {
    const noAddress = handoverRecipients(
      { id: "42", user: "7" },
      { ...user, email: null },
      OPERATORS,
    );
    expect(noAddress).toEqual({
      ok: false,
      problem: 'booking 42: the dashboard gives no e-mail address for its user "7"',
      command: "laas handover 42",
    });
    expect(handoverRecipients({ id: "42", user: "7" }, null, OPERATORS)).toMatchObject({
      ok: false,
      problem: 'booking 42: the dashboard does not know its user "7"',
    });
    expect(handoverRecipients({ id: "42", user: null }, null, OPERATORS)).toMatchObject({
      ok: false,
      problem:
        "booking 42: the dashboard does not say who booked it, so there is no address for its hand-over",
    });
  });

  it("sends a manual booking's hand-over to the operators, who made it", () => {
    const id = manualBookingId("pod1", new Date(0));
    expect(handoverRecipients({ id, user: null }, null, OPERATORS)).toEqual({
      ok: true,
      to: OPERATORS,
    });
    expect(handoverRecipients({ id, user: null }, null, [])).toMatchObject({ ok: false });
  });
});

type Harness = ListeningHandoverLab;

const harness = (): Promise<Harness> =>
  listenOnHandoverLab({ name: "laas-recipients", handover: { operators: OPERATORS } });

describe("a hand-over the dashboard gives no address for", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
    // A user the dashboard knows, without an address.
    h.lab.dashboard.addUser({ id: 10, username: "nomail", email: "" });
  }, SLOW);
  afterAll(async () => h?.close());

  const laas = (...args: string[]) =>
    runCommand(process.execPath, [join(repoRoot, "bin", "laas.mjs"), ...args], { cwd: repoRoot });

  function book(id: number, host: { resourceId: string }, user?: number): void {
    const now = Date.now();
    h.lab.dashboard.addBooking(
      bookingAt({
        id,
        resource_id: Number(host.resourceId),
        start: new Date(now - 1_000),
        end: new Date(now + 600_000),
        installer_name: "Fuel",
        ...(user !== undefined ? { user } : {}),
      }),
    );
  }

  function undelivered(id: string): Promise<Booking> {
    return waitFor(
      `booking ${id}: hand-over undelivered`,
      async () => {
        const b = await h.embedded.runtime.store.getBooking(id);
        if (b?.state === "failed") throw new Error(`booking failed: ${b.failure}`);
        return b?.state === "ready" && b.access?.handover === "undelivered" ? b : undefined;
      },
      90_000,
    );
  }

  function passwordsOf(booking: Booking): string[] {
    const key = h.embedded.runtime.config.handover!.sealingKey;
    const sealed = booking.access?.sealedCredentials;
    if (!sealed) throw new Error(`booking ${booking.id} has no sealed credentials`);
    const values = Object.values(openCredentials(key, booking.id, sealed));
    expect(values).toHaveLength(2);
    return values;
  }

  /**
   * The messages that hold any of `secrets`, anywhere in what the server received: as sent, and
   * decoded (a quoted-printable body writes a password's `=` as `=3D`, or breaks its line).
   */
  function holding(secrets: string[]): CapturedMail[] {
    return h.smtp.messages.filter((m) =>
      secrets.some((s) => m.raw.includes(s) || m.text.includes(s) || (m.html ?? "").includes(s)),
    );
  }

  it(
    "keeps the credentials sealed, tells the operators without them, and `laas handover` delivers once the address is there",
    async () => {
      const [noAddress, noUser] = h.lab.inventory;
      book(601, noAddress!, 10);
      // A dashboard that does not say who booked (the 2017 API).
      book(602, noUser!);
      await h.listener.pollOnce();
      const first = await undelivered("601");
      const second = await undelivered("602");
      expect(first.access?.handoverError).toBe(
        'NoRecipient: booking 601: the dashboard gives no e-mail address for its user "10"; the credentials stay sealed on the booking, and once the dashboard has the user\'s address `laas handover 601` sends them',
      );
      expect(second.access?.handoverError).toMatch(
        /^NoRecipient: booking 602: the dashboard does not say who booked it/,
      );

      // Nothing with a password went anywhere: not to the operators, not to anyone.
      const secrets = [...passwordsOf(first), ...passwordsOf(second)];
      expect(h.smtp.messages.some((m) => m.subject.startsWith("Your LaaS pod"))).toBe(false);
      // The operators were told, without them.
      const notice = await waitFor("the operators' notice", () =>
        h.smtp.messages.find((m) => m.subject.startsWith("LaaS: hand-over of booking 601 ")),
      );
      expect(notice.subject).toBe(
        `LaaS: hand-over of booking 601 (${noAddress!.name}) NOT delivered`,
      );
      expect(notice.to).toEqual(OPERATORS);
      expect(notice.text).toContain("could NOT be delivered");
      expect(notice.text).toContain("the dashboard gives no e-mail address for its user");
      expect(notice.text).toContain("`laas handover 601` sends them to the user");
      expect(notice.text).toContain("Sent to:    (nobody)");
      await waitFor("the second notice", () =>
        h.smtp.messages.find((m) => m.subject.startsWith("LaaS: hand-over of booking 602 ")),
      );
      expect(holding(secrets)).toEqual([]);
      // The scan finds what is there.
      expect(holding(["could NOT be delivered"])).toHaveLength(2);

      // `laas status` shows why, and what sends it.
      const status = await laas("status", "--config", h.lab.configPath);
      expect(status.code).toBe(0);
      expect(status.stdout).toContain(`booking 601 (${noAddress!.name}): hand-over not delivered:`);
      expect(status.stdout).toContain("`laas handover 601` sends them");

      // Still no address: `laas handover` refuses to send it anywhere.
      const still = await laas("handover", "601", "--config", h.lab.configPath);
      expect(still.code).toBe(1);
      expect(still.stderr).toContain("the dashboard gives no e-mail address for its user");
      expect(holding(secrets)).toEqual([]);

      // The dashboard gets the address: `laas handover` delivers to the user alone.
      h.lab.dashboard.setUsers([{ id: 10, username: "nomail", email: "nomail@example.org" }]);
      const sent = await laas("handover", "601", "--config", h.lab.configPath);
      expect(sent.stderr).toBe("");
      expect(sent.code).toBe(0);
      expect(sent.stdout).toContain("hand-over sent to nomail@example.org");
      const delivered = holding(passwordsOf(first));
      expect(delivered).toHaveLength(1);
      expect(delivered[0]!.envelope.to).toEqual(["nomail@example.org"]);
      expect(delivered[0]!.cc).toEqual([]);
      expect((await h.embedded.runtime.store.getBooking("601"))?.access).toMatchObject({
        handover: "delivered",
        sealedCredentials: null,
      });
      const sentNotice = h.smtp.messages.find(
        (m) => m.subject === `LaaS: hand-over of booking 601 (${noAddress!.name}) sent`,
      );
      expect(sentNotice?.text).toContain("Sent to:    nomail@example.org");
      expect(holding(secrets)).toEqual(delivered);
    },
    SLOW,
  );
});
