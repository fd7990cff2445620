import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SmtpMailer } from "../lib/adapters/smtp/smtp-mailer";
import { type Booking, manualBookingId } from "../lib/domain/booking";
import { newHost } from "../lib/domain/host";
import { recordUndelivered } from "../lib/lifecycle/access";
import { recordIntent } from "../lib/lifecycle/checkpoints";
import { START_IMAGING, startImaging } from "../lib/lifecycle/imaging";
import { recordFailure } from "../lib/lifecycle/outcomes";
import { beginProvisioning, newBooking } from "../lib/lifecycle/transitions";
import { bookingAt, type StatusNote } from "../sim/dashboard-sim";
import { repoRoot } from "../sim/lab";
import type { CapturedMail } from "../sim/smtp";
import { runCommand } from "../sim/subprocess";
import { dashboardBooking } from "./helpers/bookings";
import { type ListeningHandoverLab, listenOnHandoverLab } from "./helpers/handover-lab";
import { waitFor } from "./helpers/wait";

const SLOW = 180_000;
const OPERATORS = ["lab-ops@lab.example.org"];
const FAILING_HOST = "fog-machine-5";
/** What the failing installer's log ends with: addresses and a path inside the lab. */
const LOG_TAIL = "ERROR: mirror http://10.20.30.40:8080/fuel/ unreachable from 192.168.122.2";

type Harness = ListeningHandoverLab;

const harness = (): Promise<Harness> =>
  listenOnHandoverLab({
    name: "laas-failure",
    lab: { installerFails: [FAILING_HOST] },
    handover: { operators: OPERATORS },
  });

function book(h: Harness, id: number, resourceId: string, installer: string): void {
  const now = Date.now();
  h.lab.dashboard.addBooking(
    bookingAt({
      id,
      resource_id: Number(resourceId),
      start: new Date(now - 1_000),
      end: new Date(now + 600_000),
      installer_name: installer,
      purpose: "failure report",
      user: 7,
    }),
  );
}

function failed(h: Harness, id: string): Promise<Booking> {
  return waitFor(
    `booking ${id} failed`,
    async () => {
      const booking = await h.embedded.runtime.store.getBooking(id);
      if (booking?.state === "ready") throw new Error(`booking ${id} became ready`);
      return booking?.state === "failed" ? booking : undefined;
    },
    90_000,
  );
}

function noteOf(h: Harness, id: string): Promise<StatusNote> {
  return waitFor(`the failure note of booking ${id}`, () =>
    h.lab.dashboard.statusNotes.find((n) => n.title === `Booking ${id}: provisioning failed`),
  );
}

/** A manual booking in its first provision run on `hostName` (added to the store if missing). */
async function provisioningOn(h: Harness, hostName: string): Promise<string> {
  const { store } = h.embedded.runtime;
  await store.createHost(newHost(hostName, null));
  const id = manualBookingId(hostName, new Date());
  await store.createBooking(newBooking(dashboardBooking({ id, hostName }), new Date()));
  await store.updateBooking(id, beginProvisioning);
  return id;
}

function failureMails(h: Harness, id: string): CapturedMail[] {
  return h.smtp.messages.filter((m) => m.subject.startsWith(`LaaS: booking ${id} `));
}

function failureMail(h: Harness, id: string): Promise<CapturedMail> {
  return waitFor(`the operators' mail on booking ${id}`, () => failureMails(h, id)[0]);
}

async function laasStatus(h: Harness): Promise<string> {
  const result = await runCommand(
    process.execPath,
    [join(repoRoot, "bin", "laas.mjs"), "status", "--config", h.lab.configPath],
    { cwd: repoRoot },
  );
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return result.stdout;
}

/** What must never be in a public note: addresses, DNs, URLs, remote output, error names. */
function expectNothingInternal(note: StatusNote, internal: string[]): void {
  const text = `${note.title}\n${note.content}`;
  for (const piece of internal) expect(text).not.toContain(piece);
  expect(text).not.toMatch(/\d+\.\d+\.\d+\.\d+/);
  expect(text).not.toMatch(/\b(dc|ou|uid|cn)=/i);
  expect(text).not.toMatch(/[a-z]+:\/\//);
}

describe("what a failure tells the public, and what it tells the operators", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
    h.lab.dashboard.addUser({ id: 7, username: "jdoe", email: "jdoe@example.org" });
  }, SLOW);
  afterAll(async () => h?.close());

  it(
    "an installer failure: the note says the installer failed; status, log and mail have its log",
    async () => {
      const host = h.lab.inventory.find((x) => x.name === FAILING_HOST)!;
      // The installer's log gets a last line naming the lab's internal addresses, as a real
      // installer's stderr does, before the watcher reads its tail.
      h.lab.onInstallerDone((name) => {
        if (name !== FAILING_HOST) return;
        const shell = h.lab.hosts.shell(name);
        for (const [path, text] of shell.files) {
          if (path.endsWith(".log")) shell.files.set(path, `${text}${LOG_TAIL}\n`);
        }
      });
      book(h, 501, host.resourceId, "Joid");
      await h.listener.pollOnce();
      const booking = await failed(h, "501");
      // The booking keeps the whole error: the installer's status and its log's tail.
      expect(booking.failure).toMatch(/^InstallerFailed: the installer on fog-machine-5 exited/);
      expect(booking.failure).toContain(LOG_TAIL);

      const note = await noteOf(h, "501");
      expect(note.type).toBe("error");
      expect(note.content).toBe(
        `${FAILING_HOST} could not be provisioned: the installer failed. The lab's operators have been told.`,
      );
      expectNothingInternal(note, [LOG_TAIL, "exited with", "InstallerFailed", "[deploy]"]);

      // The operators have it all: booking, host, the failed step and the error, log included.
      const mail = await failureMail(h, "501");
      expect(mail.to).toEqual(OPERATORS);
      expect(mail.cc).toEqual([]);
      expect(mail.subject).toBe(
        `LaaS: booking 501 provision failed on ${FAILING_HOST} (AwaitInstaller)`,
      );
      expect(mail.text).toContain(`Host:       ${FAILING_HOST}`);
      expect(mail.text).toContain("Failed at:  AwaitInstaller");
      expect(mail.text).toContain("Host now:   cleaning");
      expect(mail.text).toContain(LOG_TAIL);
      expect(mail.text).toContain("goes\nback to the free pool");
      expect(mail.text).toContain(`laas host show ${FAILING_HOST}`);
      expect(mail.text).toContain(note.content);

      // `laas status` shows the whole error, with the step, below its tables.
      const status = await laasStatus(h);
      expect(status).toContain(
        `booking 501 (${FAILING_HOST}): provision failed at AwaitInstaller:`,
      );
      expect(status).toContain(`    ${LOG_TAIL}`);
      // And so does the log.
      expect(
        h.lines.some((l) => l.includes('"provision failed"') && l.includes("10.20.30.40")),
      ).toBe(true);
    },
    SLOW,
  );

  it(
    "a directory failure naming a DN: the note says access could not be set up",
    async () => {
      const host = h.lab.inventory.find((x) => x.name !== FAILING_HOST)!;
      // The directory loses the users' branch: the VPN user's creation fails naming it.
      const admin = await h.slapd.adminClient();
      try {
        await admin.del(h.slapd.usersBase);
        book(h, 502, host.resourceId, "Fuel");
        await h.listener.pollOnce();
        const booking = await failed(h, "502");
        expect(booking.failure).toContain(h.slapd.usersBase);
        expect(booking.failure).toContain(h.slapd.url);

        const note = await noteOf(h, "502");
        expect(note.content).toBe(
          `${host.name} could not be provisioned: access could not be set up. The lab's operators have been told.`,
        );
        expectNothingInternal(note, [h.slapd.usersBase, h.slapd.suffix, h.slapd.url]);

        const mail = await failureMail(h, "502");
        expect(mail.subject).toBe(
          `LaaS: booking 502 provision failed on ${host.name} (CreateVpnUser)`,
        );
        expect(mail.text).toContain(h.slapd.usersBase);
        expect(mail.text).toContain(h.slapd.url);

        const status = await laasStatus(h);
        expect(status).toContain(`booking 502 (${host.name}): provision failed at CreateVpnUser:`);
        expect(status).toContain(h.slapd.usersBase);
      } finally {
        const rdn = h.slapd.usersRdn.split("=");
        await admin
          .add(h.slapd.usersBase, { objectClass: ["top", "organizationalUnit"], ou: rdn[1] ?? "" })
          .catch(() => undefined);
        await admin.unbind();
      }
    },
    SLOW,
  );

  it(
    "mails the operators once though RecordFailure runs twice, and keeps a failure whose mail failed",
    async () => {
      const { runtime } = h.embedded;
      // Manual bookings, which poll leaves alone, failed by RecordFailure directly.
      const start = async (hostName: string) => {
        const id = manualBookingId(hostName, new Date());
        await runtime.store.createBooking(
          newBooking(dashboardBooking({ id, hostName }), new Date()),
        );
        await runtime.store.updateBooking(id, beginProvisioning);
        return {
          bookingId: id,
          hostName,
          phase: "provision",
          generation: 1,
          error: { Error: "CommandFailed", Cause: "virsh net-define on 10.9.8.7 exited with 1" },
        } as const;
      };

      const twice = await start("no-such-host-a");
      expect(await recordFailure(runtime, twice)).toMatchObject({ state: "failed" });
      expect(await recordFailure(runtime, twice)).toMatchObject({ state: "failed" });
      await waitFor("the mail", () => failureMails(h, twice.bookingId)[0]);
      expect(failureMails(h, twice.bookingId)).toHaveLength(1);
      expect(failureMails(h, twice.bookingId)[0]!.text).toContain("10.9.8.7");

      // The mail server refuses the message: the failure is recorded all the same.
      const refused = await start("no-such-host-b");
      h.smtp.rejectNext(1, { code: 554, stage: "data" });
      expect(await recordFailure(runtime, refused)).toMatchObject({ state: "failed" });
      const kept = await runtime.store.getBooking(refused.bookingId);
      expect(kept).toMatchObject({
        state: "failed",
        failure: "CommandFailed: virsh net-define on 10.9.8.7 exited with 1",
      });
      expect(failureMails(h, refused.bookingId)).toEqual([]);
      expect(
        h.lines.some(
          (l) => l.includes(refused.bookingId) && l.includes("could not mail the operators"),
        ),
      ).toBe(true);
      // Run again (a restart), RecordFailure sends the mail it could not send.
      expect(await recordFailure(runtime, refused)).toMatchObject({ state: "failed" });
      expect(failureMails(h, refused.bookingId)).toHaveLength(1);
      expect(await recordFailure(runtime, refused)).toMatchObject({ state: "failed" });
      expect(failureMails(h, refused.bookingId)).toHaveLength(1);
    },
    SLOW,
  );
  it(
    "does not let a mail server that never answers hold up RecordFailure past its timeout",
    async () => {
      // A server that takes the connection and never greets; the mailer would wait 120 s.
      const sockets: Socket[] = [];
      const silent = createServer((socket) => {
        sockets.push(socket);
      });
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      const address = silent.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      try {
        const { runtime } = h.embedded;
        const email = { ...runtime.config.handover!.email, host: "127.0.0.1", port };
        const hanging = {
          ...runtime,
          mailer: new SmtpMailer(
            { ...email, security: "none", timeoutSeconds: 120 },
            runtime.logger,
          ),
        };
        const id = manualBookingId("no-such-host-c", new Date());
        await runtime.store.createBooking(
          newBooking(dashboardBooking({ id, hostName: "no-such-host-c" }), new Date()),
        );
        await runtime.store.updateBooking(id, beginProvisioning);
        const started = Date.now();
        const outcome = await recordFailure(hanging, {
          bookingId: id,
          hostName: "no-such-host-c",
          phase: "provision",
          generation: 1,
          error: { Error: "TransientError", Cause: "FOG at 10.0.0.5 unreachable" },
        });
        const took = Date.now() - started;
        expect(outcome).toMatchObject({ state: "failed" });
        // RecordFailure has 60 s; it waits for the mail 20 s at most.
        expect(took).toBeGreaterThanOrEqual(19_000);
        expect(took).toBeLessThan(30_000);
        expect(sockets.length).toBeGreaterThan(0);
        expect(await runtime.store.getBooking(id)).toMatchObject({ state: "failed" });
        expect(h.lines.some((l) => l.includes(id) && l.includes("still being sent"))).toBe(true);
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    },
    SLOW,
  );

  it(
    "mails the operators once when a failure quarantines a host, and when a hand-over gave up",
    async () => {
      const { runtime } = h.embedded;
      const hostName = h.lab.inventory[0]!.name;
      const id = await provisioningOn(h, hostName);
      // The host failed once before and this run touched it: the second failure in a row.
      await runtime.store.updateHost(hostName, (host) => ({
        ...host,
        state: "in-use",
        bookingId: id,
        failures: 1,
      }));
      const input = {
        bookingId: id,
        hostName,
        phase: "provision",
        generation: 1,
        error: { Error: "HostUnreachable", Cause: "no SSH on 10.1.1.9 by its deadline" },
      } as const;
      expect(await recordFailure(runtime, input)).toMatchObject({ host: "quarantined" });
      expect(await recordFailure(runtime, input)).toMatchObject({ state: "failed" });
      const subject = `LaaS: host ${hostName} quarantined`;
      const quarantine = await waitFor("the quarantine mail", () =>
        h.smtp.messages.find((m) => m.subject === subject),
      );
      expect(quarantine.to).toEqual(OPERATORS);
      expect(quarantine.text).toContain(`laas host release ${hostName}`);
      expect(quarantine.text).toContain("2 in a row (quarantine_after: 2)");
      expect(quarantine.text).toContain("no SSH on 10.1.1.9");
      expect(h.smtp.messages.filter((m) => m.subject === subject)).toHaveLength(1);
      expect(await runtime.store.getHost(hostName)).toMatchObject({
        state: "quarantined",
        failures: 2,
      });

      // A hand-over that gave up after its retries.
      const ready = manualBookingId("fog-machine-2", new Date());
      await runtime.store.createBooking(
        newBooking(dashboardBooking({ id: ready, hostName: "fog-machine-2" }), new Date()),
      );
      await runtime.store.updateBooking(ready, beginProvisioning);
      await runtime.store.updateBooking(ready, (b) => ({ ...b, state: "ready" }));
      const gaveUp = {
        bookingId: ready,
        hostName: "fog-machine-2",
        phase: "provision",
        generation: 1,
        error: { Error: "TransientError", Cause: "SMTP answered 451 at mail.lab" },
      } as const;
      // The mail server refuses the notice: recorded all the same, and the step fails to be
      // retried (the workflow's Retry) until the operators are told.
      h.smtp.rejectNext(1, { code: 554, stage: "data" });
      await expect(recordUndelivered(runtime, gaveUp)).rejects.toMatchObject({
        name: "TransientError",
        message: expect.stringMatching(/operators could not be mailed yet/),
      });
      expect(await recordUndelivered(runtime, gaveUp)).toEqual({
        handover: "undelivered",
        operatorsTold: true,
      });
      await recordUndelivered(runtime, gaveUp);
      const notices = h.smtp.messages.filter(
        (m) => m.subject === `LaaS: hand-over of booking ${ready} (fog-machine-2) NOT delivered`,
      );
      expect(notices).toHaveLength(1);
      expect(notices[0]!.text).toContain(`laas handover ${ready}`);
      expect(notices[0]!.text).toContain("SMTP answered 451");
    },
    SLOW,
  );

  it(
    "cancels the deploy task a StartImaging that failed after creating it left in FOG",
    async () => {
      const { runtime } = h.embedded;
      const hostName = h.lab.inventory[2]!.name;
      const fogHost = h.lab.fog.hosts().find((x) => x.name === hostName)!;
      const id = await provisioningOn(h, hostName);
      await runtime.store.updateHost(hostName, (host) => ({
        ...host,
        state: "claimed",
        bookingId: id,
        fogId: String(fogHost.id),
      }));
      const input = {
        bookingId: id,
        hostName,
        phase: "provision",
        generation: 1,
      } as const;
      // The deploy task was asked for (the intent is written first), then the reboot failed.
      await runtime.store.updateBooking(
        id,
        recordIntent(input, START_IMAGING, { deployRequested: true }, new Date()),
      );
      await runtime.imagerFor(runtime.config.cleanConfig.fog).deploy(String(fogHost.id), 1, "t");
      const active = () =>
        h.lab.fog.tasks().filter((t) => t.hostName === hostName && t.stateId <= 3);
      expect(active()).toHaveLength(1);
      const outcome = await recordFailure(runtime, {
        ...input,
        error: { Error: "CommandFailed", Cause: "reboot exited with 1" },
      });
      // Never touched: free, its streak not counted, and no task of the booking left in FOG.
      expect(outcome).toMatchObject({ state: "failed", host: "free" });
      expect(active()).toEqual([]);
      expect(await runtime.store.getHost(hostName)).toMatchObject({ state: "free", failures: 0 });
    },
    SLOW,
  );

  it(
    "never images a host another booking holds now (an operator took it over)",
    async () => {
      const { runtime } = h.embedded;
      const hostName = h.lab.inventory[1]!.name;
      const id = await provisioningOn(h, hostName);
      await runtime.store.updateHost(hostName, (host) => ({
        ...host,
        state: "cleaning",
        bookingId: "manual-someone-else",
      }));
      const tasksBefore = h.lab.fog.tasks().length;
      const rebootsBefore = h.lab.hosts.reboots.length;
      await expect(
        startImaging(runtime, { bookingId: id, hostName, phase: "provision", generation: 1 }),
      ).rejects.toMatchObject({ name: "HostBusy" });
      expect(h.lab.fog.tasks()).toHaveLength(tasksBefore);
      expect(h.lab.hosts.reboots).toHaveLength(rebootsBefore);
    },
    SLOW,
  );
});
