/**
 * The chaos suite's judge: on evidence that breaks one invariant at a time, that invariant (and
 * only it) fails, naming the booking or host; a secret found is named, never shown. And the
 * sampler's double-holding rule: what two looks at the bookings agree on, around one at hosts.
 */
import { describe, expect, it } from "vitest";
import type { Booking } from "../../lib/domain/booking";
import { type Host, newHost } from "../../lib/domain/host";
import { newBooking } from "../../lib/lifecycle/transitions";
import type { CapturedMail } from "../../sim/smtp";
import type { BookingTrack } from "./bookings";
import type { Evidence } from "./evidence";
import { type JudgeInput, judge } from "./invariants";
import type { PlannedBooking } from "./plan";
import { type BookingSeen, doubleHoldsIn } from "./sampler";

const NOW = new Date("2026-12-01T12:00:00Z");

function booking(id: string, change: Partial<Booking> = {}): Booking {
  return {
    ...newBooking(
      {
        id,
        resourceId: "50",
        hostName: "h1",
        start: NOW,
        end: NOW,
        installer: null,
        scenario: null,
        purpose: "",
        user: "1",
      },
      NOW,
    ),
    state: "released",
    ...change,
  };
}

function host(name: string, change: Partial<Host> = {}): Host {
  return { ...newHost(name, { id: "1", mac: null }, NOW), ...change };
}

function track(id: number, change: Partial<PlannedBooking> = {}): BookingTrack {
  return {
    plan: {
      id,
      hostIndex: 0,
      installer: null,
      scenario: null,
      purpose: "",
      userId: 1,
      hostile: null,
      backToBack: false,
      startDelayMs: 0,
      durationMs: 10_000,
      midFlight: null,
      ...change,
    },
    addedAtMs: 0,
    start: NOW,
    end: NOW,
    removed: false,
    midFlightDone: false,
  };
}

function mail(to: string, subject: string, text = ""): CapturedMail {
  return {
    envelope: { from: "laas@lab.example.org", to: [to] },
    from: [],
    to: [to],
    cc: [],
    subject,
    text,
    html: null,
    raw: "",
    headers: new Map(),
    secure: true,
    user: null,
  };
}

function seen(states: Booking["state"][], handover: string[] = []): BookingSeen {
  return {
    states: new Set(states),
    firstSeen: new Map(states.map((s, i) => [s, i * 1000])),
    handover: new Set(handover as never[]),
  };
}

/** A run where everything went right: one booking ready, delivered, released. */
function clean(): JudgeInput {
  const evidence: Evidence = {
    bookings: [
      booking("1", {
        access: {
          vpnUser: null,
          vpnUserDn: null,
          vpnEntryUuid: null,
          vpnIntendedDn: null,
          vpnPerson: null,
          vpnAccountFrom: null,
          rootPasswordSet: true,
          sshKey: null,
          vpnOthers: [],
          otherSshKeys: {},
          sealedCredentials: null,
          handover: "delivered",
          handoverError: null,
        },
      }),
    ],
    hosts: [host("h1")],
    storeDump: ['laas-bookings {"id":{"S":"1"}}'],
    fogTasks: [],
    hostLeftovers: [],
    vpnEntries: [],
    mails: [mail("ada@example.org", "Your LaaS pod h1 is ready (booking 1)")],
    statusNotes: [],
    logFiles: [{ file: "laas.log", lines: ['{"level":30,"bookingId":"1","msg":"booking ready"}'] }],
    outputs: [],
  };
  return {
    evidence,
    tracks: [track(1)],
    seen: new Map([["1", seen(["provisioning", "ready", "releasing", "released"], ["delivered"])]]),
    doubleHolds: [],
    quarantines: [],
    unexpectedExits: [],
    quarantineAfter: 2,
    secrets: new Map([["dashboard-token", "s3cr3t-token-value"]]),
    traffic: [{ service: "FOG", received: 10, forwarded: 10 }],
    imaging: { imagings: new Map(), reboots: [] },
    queuedLimitMs: 15_000,
  };
}

const failedChecks = (input: JudgeInput) =>
  judge(input)
    .checks.filter((c) => !c.ok)
    .map((c) => ({ name: c.name, details: c.details }));

describe("chaos judge", () => {
  it("passes a clean run", () => {
    const judged = judge(clean());
    expect(judged.checks.filter((c) => !c.ok)).toEqual([]);
    expect(judged.outcomes.get("1")?.outcome).toBe("ready-then-released");
  });

  it("fails a booking left unfinished or missing, or failed without a reason", () => {
    const input = clean();
    input.evidence.bookings[0]!.state = "releasing";
    input.tracks = [...input.tracks, track(2), track(3)];
    input.evidence.bookings.push(booking("3", { state: "failed", failure: "" }));
    const [failed, ...others] = failedChecks(input);
    expect(failed?.name).toMatch(/^every booking ends/);
    expect(failed?.details.join("\n")).toMatch(/booking 1 on h1: still releasing/);
    expect(failed?.details.join("\n")).toMatch(/booking 2: never in the store/);
    expect(failed?.details.join("\n")).toMatch(/booking 3: failed without a reason/);
    // The failed booking 3 was not mailed to the operators either.
    expect(others.map((c) => c.name)).toEqual(["every failure mailed to the operators"]);
  });

  it("fails a host held by two bookings", () => {
    const input = clean();
    input.doubleHolds = [
      { atMs: 1500, host: "h1", bookings: ["1", "2"], hostState: "in-use", hostBooking: "1" },
    ];
    expect(failedChecks(input)).toEqual([
      {
        name: "no host is ever held by two bookings",
        details: ["at 1.5 s host h1 (in-use, names booking 1) held by 1 and 2"],
      },
    ]);
  });

  it("fails a host quarantined before quarantine_after failures in a row", () => {
    const input = clean();
    input.evidence.hosts = [host("h1", { state: "quarantined", failures: 1, reason: "why" })];
    expect(failedChecks(input).map((c) => c.name)).toEqual([
      "no host quarantined unless it failed quarantine_after (2) times in a row",
    ]);
    input.evidence.hosts = [host("h1", { state: "quarantined", failures: 2, reason: "why" })];
    expect(failedChecks(input)).toEqual([]);
  });

  it("fails a quarantine seen during the run, though an operator released the host since", () => {
    const input = clean();
    input.quarantines = [
      {
        atMs: 2000,
        host: "h1",
        failures: 1,
        reason: "booking 1 provision failed",
        lastFailure: null,
        byOperator: false,
      },
    ];
    expect(failedChecks(input)[0]?.details).toEqual([
      "at 2.0 s host h1 quarantined with failures=1 (< 2); reason: booking 1 provision failed; last failure: -",
    ]);
    input.quarantines = [{ ...input.quarantines[0]!, byOperator: true }];
    expect(failedChecks(input)).toEqual([]);
  });

  it("fails leftover VPN users, VMs, networks and active FOG tasks", () => {
    const input = clean();
    input.evidence.vpnEntries = [
      { dn: "uid=ada", uid: "ada", description: "laas-managed booking=1" },
    ];
    input.evidence.hostLeftovers = [{ host: "h1", networks: ["admin"], domains: ["jumphost"] }];
    input.evidence.fogTasks = [
      {
        id: 9,
        name: "laas release booking 1",
        hostId: 1,
        hostName: "h1",
        typeId: 1,
        stateId: 1,
        imageId: 1,
        percent: 0,
        partition: 0,
      },
    ];
    const [failed, ...others] = failedChecks(input);
    expect(others).toEqual([]);
    expect(failed?.details).toEqual([
      "VPN user ada left in slapd (laas-managed booking=1)",
      "host h1: VMs [jumphost], networks [admin]",
      'FOG task 9 "laas release booking 1" on h1 still in state 1',
    ]);
    expect(judge(input).leftovers).toEqual({ vpnUsers: 1, vms: 1, networks: 1, fogTasks: 1 });
  });

  it("notes, without failing, a pod on a host rightly quarantined (an operator releases it)", () => {
    const input = clean();
    input.evidence.hosts = [host("h1", { state: "quarantined", failures: 2 })];
    input.evidence.hostLeftovers = [{ host: "h1", networks: ["admin"], domains: ["jumphost"] }];
    const check = judge(input).checks.find((c) => c.name.startsWith("zero leftover"));
    expect(check?.ok).toBe(true);
    expect(check?.notes).toEqual([
      "host h1 (quarantined): VMs [jumphost], networks [admin], until an operator releases it",
    ]);
  });

  it("fails a dashboard note saying the operators were told when no mail went", () => {
    const input = clean();
    input.evidence.statusNotes.push({
      id: 1,
      resource: 50,
      type: "error",
      title: "Booking 1: provisioning failed",
      content: "h1 could not be provisioned: x. The lab's operators have been told.",
      timestamp: "",
    });
    expect(failedChecks(input).map((c) => c.name)).toEqual([
      "a dashboard note says the operators were told only when they were",
    ]);
    input.evidence.mails.push(
      mail("lab-ops@lab.example.org", "LaaS: booking 1 provision failed on h1 (StartImaging)"),
    );
    expect(failedChecks(input)).toEqual([]);
  });

  it("fails a hand-over neither delivered nor recorded undelivered, or undelivered untold", () => {
    const input = clean();
    input.evidence.bookings[0]!.access!.handover = "pending";
    input.seen.set("1", seen(["ready", "released"], ["pending"]));
    expect(failedChecks(input)[0]?.details[0]).toMatch(/booking 1: ready, hand-over neither/);

    input.seen.set("1", seen(["ready", "released"], ["pending", "undelivered"]));
    expect(failedChecks(input)[0]?.details[0]).toMatch(/undelivered, operators not told/);
    input.evidence.mails.push(
      mail("lab-ops@lab.example.org", "LaaS: hand-over of booking 1 not delivered"),
    );
    expect(failedChecks(input)).toEqual([]);
  });

  it("notes (without failing) a hand-over withdrawn while it was still retried", () => {
    const input = clean();
    input.evidence.bookings[0]!.access!.handover = "withdrawn";
    input.seen.set("1", seen(["ready", "releasing", "released"], ["pending", "withdrawn"]));
    const judged = judge(input);
    const check = judged.checks.find((c) => c.name.startsWith("every hand-over"));
    expect(check?.ok).toBe(true);
    expect(check?.notes?.[0]).toMatch(/booking 1: ended 1 s after ready while its hand-over/);
  });

  it("fails a hostile booking not failed, or failed after its host was touched", () => {
    const input = clean();
    input.tracks = [...input.tracks, track(2, { hostile: "nul-scenario" })];
    input.evidence.bookings.push(booking("2", { state: "failed", failure: "InstallerFailed: x" }));
    input.evidence.mails.push(
      mail("lab-ops@lab.example.org", "LaaS: booking 2 provision failed on h1 (StartInstaller)"),
    );
    input.evidence.fogTasks = [
      {
        id: 4,
        name: "laas provision booking 2",
        hostId: 1,
        hostName: "h1",
        typeId: 1,
        stateId: 4,
        imageId: 2,
        percent: 100,
        partition: 1,
      },
    ];
    const failed = failedChecks(input);
    expect(failed.map((c) => c.name)).toEqual([
      "hostile bookings failed at the door (their host untouched)",
    ]);
    expect(failed[0]?.details[0]).toMatch(
      /booking 2 \(nul-scenario\): its host was touched \(1 FOG deploy task\(s\)\); ended failed: InstallerFailed/,
    );
  });

  it("names a secret found in a log line, the store or a note, never its value", () => {
    for (const place of ["log", "store", "note"] as const) {
      const input = clean();
      const line = "token was s3cr3t-token-value here";
      if (place === "log") input.evidence.logFiles[0]!.lines.push(line);
      if (place === "store") input.evidence.storeDump.push(line);
      if (place === "note") {
        input.evidence.statusNotes.push({
          id: 1,
          resource: 50,
          type: "info",
          title: "t",
          content: line,
          timestamp: "",
        });
      }
      const failed = failedChecks(input);
      expect(
        failed.map((c) => c.name),
        place,
      ).toEqual(["no secret in any log line, store item, dashboard note or operators' mail"]);
      expect(failed[0]?.details.join("\n")).toMatch(/^dashboard-token in /);
      expect(failed[0]?.details.join("\n")).not.toContain("s3cr3t");
    }
  });

  it("fails a listener that exited on its own", () => {
    const input = clean();
    input.unexpectedExits = [{ pid: 12, stdout: "", stderr: "boom\n", ended: "exited 1" }];
    expect(failedChecks(input)).toEqual([
      {
        name: "the listener ends only when killed or stopped",
        details: ["listener 12 exited 1: boom"],
      },
    ]);
  });
});

describe("imagings and reboots", () => {
  const queued = (host: string) => ({
    taskId: 5,
    name: "laas release booking 9",
    host,
    createdAtMs: 10_000,
    endedAtMs: 31_000,
    states: [1, 5],
  });

  it("fails an imaging left queued whose host LaaS never rebooted", () => {
    const input = clean();
    input.imaging = { imagings: new Map([[5, queued("h1")]]), reboots: [] };
    const failed = failedChecks(input);
    expect(failed.map((c) => c.name)).toEqual([
      "every imaging LaaS asked FOG for had its host rebooted into it",
    ]);
    expect(failed[0]?.details[0]).toBe(
      'booking 9: FOG task 5 "laas release booking 9" on h1 sat queued 21 s (from 10.0 s), the host never rebooted meanwhile',
    );
  });

  it("passes one queued because the host did not network-boot (it was rebooted)", () => {
    const input = clean();
    input.imaging = {
      imagings: new Map([[5, queued("h1")]]),
      reboots: [{ host: "h1", atMs: 10_200 }],
    };
    expect(failedChecks(input)).toEqual([]);
    // Another host's reboot is no reboot of this one.
    input.imaging.reboots[0]!.host = "h2";
    expect(failedChecks(input)).toHaveLength(1);
  });
});

describe("traffic around the fault points", () => {
  it("fails a service that received more than its proxy passed on", () => {
    const input = clean();
    input.traffic = [{ service: "FOG", received: 11, forwarded: 10 }];
    expect(failedChecks(input)).toEqual([
      {
        name: "every request to the dashboard and FOG went through their fault proxies",
        details: ["FOG received 11 requests, its proxy passed on 10"],
      },
    ]);
  });
});

describe("double holding, as the sampler judges it", () => {
  const on = (id: string, state: Booking["state"]) => booking(id, { state, hostName: "h1" });

  it("two bookings holding one host in both looks", () => {
    const looks = [on("1", "ready"), on("2", "provisioning")];
    expect(doubleHoldsIn(looks, [host("h1", { bookingId: "1" })], looks)).toEqual([
      { host: "h1", bookings: ["1", "2"], hostState: "free", hostBooking: "1" },
    ]);
    // Whatever the host record says, even nothing.
    expect(doubleHoldsIn(looks, [host("h1")], looks)).toEqual([
      { host: "h1", bookings: ["1", "2"], hostState: "free", hostBooking: null },
    ]);
  });

  it("a booking provisioning while the host names another", () => {
    const looks = [on("2", "provisioning")];
    expect(
      doubleHoldsIn(looks, [host("h1", { state: "cleaning", bookingId: "1" })], looks),
    ).toHaveLength(1);
  });

  it("not a hand-over between looks: one booking released, the next then claiming the host", () => {
    const first = [on("1", "releasing"), on("2", "scheduled")];
    const second = [on("1", "released"), on("2", "provisioning")];
    expect(doubleHoldsIn(first, [host("h1", { bookingId: "1" })], second)).toEqual([]);
    // Nor a booking still releasing after MarkReleased freed the host for the next.
    const later = [on("1", "releasing"), on("2", "provisioning")];
    expect(doubleHoldsIn(later, [host("h1", { state: "claimed", bookingId: "2" })], later)).toEqual(
      [],
    );
  });
});
