/**
 * What must hold after a chaos run, once the faults have stopped and the lab has settled. Each
 * check answers whether it held and, when not, the evidence an operator or developer needs to
 * find the cause: booking ids, host names, states, the log lines. Secrets are never printed:
 * a secret found is named by what it is (e.g. "dashboard-token") and where.
 */
import type { Booking } from "../../lib/domain/booking";
import type { BookingTrack } from "./bookings";
import { activeFogTask, type Evidence, logRecords } from "./evidence";
import type { ImagingTracker } from "./imaging";
import type { ListenerOutput } from "./listeners";
import type { BookingSeen, DoubleHold, QuarantineSeen } from "./sampler";

export type Outcome =
  | "ready-then-released"
  | "released"
  | "cancelled"
  | "failed"
  | "missing"
  | "unfinished";

export interface CheckResult {
  name: string;
  ok: boolean;
  /** One line per violation (at most a few dozen), or a summary when ok. */
  details: string[];
  /** Worth a look, though the invariant held. */
  notes?: string[];
}

export interface Judged {
  outcomes: Map<string, { outcome: Outcome; booking: Booking | null }>;
  checks: CheckResult[];
  /** Failure reasons, by the error's name (the text before the first ":"). */
  failureKinds: Record<string, number>;
  leftovers: { vpnUsers: number; vms: number; networks: number; fogTasks: number };
}

export interface JudgeInput {
  evidence: Evidence;
  tracks: readonly BookingTrack[];
  seen: Map<string, BookingSeen>;
  doubleHolds: readonly DoubleHold[];
  /** Quarantines as the store's samples saw them (an operator may have released them since). */
  quarantines: readonly QuarantineSeen[];
  unexpectedExits: readonly ListenerOutput[];
  quarantineAfter: number;
  secrets: Map<string, string>;
  /**
   * Requests each HTTP service received, and how many its fault proxy passed on: a service that
   * received more was reached around its fault point.
   */
  traffic: { service: string; received: number; forwarded: number }[];
  /** FOG's imagings and the hosts' reboots over the run. */
  imaging: ImagingTracker;
  /** An imaging queued this long (ms) without its host rebooted is one LaaS left waiting. */
  queuedLimitMs: number;
}

const MAX_DETAILS = 40;

function limited(lines: string[]): string[] {
  return lines.length <= MAX_DETAILS
    ? lines
    : [...lines.slice(0, MAX_DETAILS), `… and ${lines.length - MAX_DETAILS} more`];
}

/** The log lines (as logged) that concern a booking, newest last, a few. */
function logLinesOf(
  input: JudgeInput,
  bookingId: string,
  limit = 4,
  wanted?: (line: string) => boolean,
): string[] {
  const take = wanted ?? ((line: string) => /"level":(40|50|60)/.test(line));
  const lines: string[] = [];
  for (const { lines: fileLines } of input.evidence.logFiles) {
    for (const line of fileLines) {
      if (line.includes(`"bookingId":"${bookingId}"`) && take(line)) {
        lines.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
      }
    }
  }
  // The last warnings tell why a booking ended so; what a hostile field reached shows first.
  return wanted === undefined ? lines.slice(-limit) : lines.slice(0, limit);
}

export function judge(input: JudgeInput): Judged {
  const { evidence } = input;
  const byId = new Map(evidence.bookings.map((b) => [b.id, b]));
  const records = logRecords(evidence.outputs);
  const readyLogged = new Set(
    records
      .filter((r) => r.msg === "booking ready" && typeof r.bookingId === "string")
      .map((r) => r.bookingId as string),
  );
  const wasReady = (id: string) =>
    readyLogged.has(id) || (input.seen.get(id)?.states.has("ready") ?? false);

  // ---- outcomes
  const outcomes = new Map<string, { outcome: Outcome; booking: Booking | null }>();
  const failureKinds: Record<string, number> = {};
  const outcomeProblems: string[] = [];
  const outcomeNotes: string[] = [];
  for (const track of input.tracks) {
    const id = String(track.plan.id);
    const booking = byId.get(id) ?? null;
    let outcome: Outcome;
    if (!booking) {
      outcome = "missing";
      outcomeProblems.push(
        `booking ${id}${track.plan.hostile ? ` (hostile: ${track.plan.hostile})` : ""}: never in the store`,
      );
    } else if (booking.state === "released") {
      outcome = wasReady(id) ? "ready-then-released" : "released";
      if (booking.failure) {
        outcomeNotes.push(
          `booking ${id}: ended released with a failure recorded: ${booking.failure}`,
        );
      }
    } else if (booking.state === "cancelled") {
      outcome = "cancelled";
    } else if (booking.state === "failed") {
      outcome = "failed";
      const reason = booking.failure ?? "";
      const kind = reason.split(":")[0]?.trim() || "(no reason)";
      failureKinds[kind] = (failureKinds[kind] ?? 0) + 1;
      if (reason.trim() === "") outcomeProblems.push(`booking ${id}: failed without a reason`);
    } else {
      outcome = "unfinished";
      outcomeProblems.push(
        `booking ${id} on ${booking.hostName}: still ${booking.state} (progress: ${booking.progress ?? "-"})`,
      );
    }
    outcomes.set(id, { outcome, booking });
  }

  // ---- no host held by two bookings
  const holdProblems = input.doubleHolds.map(
    (d) =>
      `at ${(d.atMs / 1000).toFixed(1)} s host ${d.host} (${d.hostState}, names booking ${d.hostBooking ?? "none"}) held by ${d.bookings.join(" and ")}`,
  );

  // ---- quarantine only after quarantine_after failures in a row (or by an operator)
  const quarantineProblems: string[] = [];
  const sampledWrongly = new Set<string>();
  for (const q of input.quarantines) {
    if (q.failures >= input.quarantineAfter || q.byOperator) continue;
    sampledWrongly.add(q.host);
    quarantineProblems.push(
      `at ${(q.atMs / 1000).toFixed(1)} s host ${q.host} quarantined with failures=${q.failures} (< ${input.quarantineAfter}); reason: ${q.reason ?? "-"}; last failure: ${q.lastFailure ?? "-"}`,
    );
  }
  for (const host of evidence.hosts) {
    if (sampledWrongly.has(host.name)) continue;
    if (host.state !== "quarantined") continue;
    const byOperator = host.history.some(
      (e) => e.event.includes("quarantine") && e.bookingId === null,
    );
    if (host.failures >= input.quarantineAfter || byOperator) continue;
    quarantineProblems.push(
      `host ${host.name} quarantined with failures=${host.failures} (< ${input.quarantineAfter}); reason: ${host.reason ?? "-"}; last failure: ${host.lastFailure ? `${host.lastFailure.bookingId} ${host.lastFailure.detail ?? ""}` : "-"}`,
    );
    for (const booking of evidence.bookings.filter(
      (b) => b.hostName === host.name && b.state === "cancelled",
    )) {
      quarantineProblems.push(
        `  booking ${booking.id} on ${host.name} never served: ${booking.progress ?? "-"}`,
      );
    }
  }

  // ---- leftovers
  const quarantined = new Set(
    evidence.hosts.filter((h) => h.state === "quarantined").map((h) => h.name),
  );
  const leftoverProblems: string[] = [];
  for (const entry of evidence.vpnEntries) {
    leftoverProblems.push(`VPN user ${entry.uid} left in slapd (${entry.description})`);
  }
  // A host rightly quarantined (its streak reached quarantine_after) is out of service until an
  // operator releases it, which reimages it: what is on it then is noted, not a leftover.
  const rightlyQuarantined = new Set(
    evidence.hosts
      .filter((h) => h.state === "quarantined" && h.failures >= input.quarantineAfter)
      .map((h) => h.name),
  );
  const leftoverNotes: string[] = [];
  let vms = 0;
  let networks = 0;
  for (const left of evidence.hostLeftovers) {
    const line = `host ${left.host}${quarantined.has(left.host) ? " (quarantined)" : ""}: VMs [${left.domains.join(", ")}], networks [${left.networks.join(", ")}]`;
    if (rightlyQuarantined.has(left.host)) {
      leftoverNotes.push(`${line}, until an operator releases it`);
      continue;
    }
    vms += left.domains.length;
    networks += left.networks.length;
    leftoverProblems.push(line);
  }
  const activeTasks = evidence.fogTasks.filter(activeFogTask);
  for (const task of activeTasks) {
    leftoverProblems.push(
      `FOG task ${task.id} "${task.name}" on ${task.hostName} still in state ${task.stateId}`,
    );
  }

  // ---- hand-overs
  const handoverProblems: string[] = [];
  const handoverNotes: string[] = [];
  const operatorMails = evidence.mails.filter((m) =>
    m.envelope.to.some((to) => to.startsWith("lab-ops@")),
  );
  const userMails = evidence.mails.filter(
    (m) => !m.envelope.to.some((to) => to.startsWith("lab-ops@")),
  );
  const handoverStats = { delivered: 0, undelivered: 0, withdrawn: 0 };
  for (const track of input.tracks) {
    const id = String(track.plan.id);
    if (!wasReady(id)) continue;
    const seen = input.seen.get(id)?.handover ?? new Set();
    const booking = byId.get(id);
    const final = booking?.access?.handover;
    const mailed = userMails.some((m) => m.subject.includes(`(booking ${id})`));
    const undeliveredLogged = records.some(
      (r) => r.bookingId === id && r.msg === "hand-over not delivered",
    );
    if (final === "delivered" || seen.has("delivered")) {
      handoverStats.delivered += 1;
      if (!mailed) handoverProblems.push(`booking ${id}: recorded delivered, no mail received`);
      continue;
    }
    if (seen.has("undelivered") || undeliveredLogged) {
      handoverStats.undelivered += 1;
      const told = operatorMails.some(
        (m) =>
          m.subject.includes(`booking ${id}`) &&
          /not (be )?delivered/i.test(`${m.subject}\n${m.text}`),
      );
      if (!told) {
        handoverProblems.push(
          `booking ${id}: hand-over recorded undelivered, operators not told (no mail)`,
        );
      }
      continue;
    }
    if (final === "withdrawn" && booking?.access?.handoverError == null) {
      // The booking ended while the hand-over was still being retried (HandOver waits a minute
      // and more between attempts; chaos bookings last seconds): withdrawn, never given up on.
      handoverStats.withdrawn += 1;
      const readyAt = input.seen.get(id)?.firstSeen.get("ready");
      const releasingAt = input.seen.get(id)?.firstSeen.get("releasing");
      const span =
        readyAt !== undefined && releasingAt !== undefined
          ? ` ${((releasingAt - readyAt) / 1000).toFixed(0)} s after ready`
          : "";
      handoverNotes.push(
        `booking ${id}: ended${span} while its hand-over was still being retried (withdrawn; operators not told)`,
      );
      continue;
    }
    handoverProblems.push(
      `booking ${id}: ready, hand-over neither delivered nor recorded undelivered (final ${final ?? "none"}, seen ${[...seen].join("/") || "none"})`,
    );
  }

  // ---- failures told to the operators
  const failureMailProblems: string[] = [];
  for (const [id, { outcome }] of outcomes) {
    if (outcome !== "failed") continue;
    const told = operatorMails.some(
      (m) => m.subject.includes(`booking ${id} `) && /failed/i.test(m.subject),
    );
    if (!told) failureMailProblems.push(`booking ${id}: failed, no failure mail to the operators`);
  }

  // ---- a note claims the operators were told only when a failure mail went out
  const noteProblems: string[] = [];
  let toldNotes = 0;
  for (const note of evidence.statusNotes) {
    if (!note.content.includes("operators have been told")) continue;
    toldNotes += 1;
    const id = /^Booking (\S+?):/.exec(note.title)?.[1] ?? "?";
    const mailed = operatorMails.some(
      (m) => m.subject.includes(`booking ${id} `) && /failed/i.test(m.subject),
    );
    if (!mailed) {
      noteProblems.push(
        `booking ${id}: note "${note.title}" says the operators were told; no such mail`,
      );
    }
  }

  // ---- hostile bookings refused at the door
  const hostileProblems: string[] = [];
  for (const track of input.tracks) {
    if (!track.plan.hostile) continue;
    const id = String(track.plan.id);
    const booking = byId.get(id);
    const tasks = evidence.fogTasks.filter((t) => t.name === `laas provision booking ${id}`);
    const what = `booking ${id} (${track.plan.hostile})`;
    if (tasks.length > 0) {
      hostileProblems.push(
        `${what}: its host was touched (${tasks.length} FOG deploy task(s)); ended ${booking?.state ?? "missing"}${booking?.failure ? `: ${booking.failure}` : ""}`,
      );
    } else if (booking?.state !== "failed") {
      hostileProblems.push(
        `${what}: not refused: ended ${booking?.state ?? "missing"} (${booking?.progress ?? "-"}), its host untouched`,
      );
    }
  }

  // ---- every imaging asked of FOG got its host rebooted (a queued task waits for a network boot)
  const rebootProblems: string[] = [];
  for (const imaging of input.imaging.imagings.values()) {
    const started = imaging.states.some((state) => state >= 2 && state <= 4);
    const until = imaging.endedAtMs ?? Number.POSITIVE_INFINITY;
    if (started || until - imaging.createdAtMs < input.queuedLimitMs) continue;
    // Rebooted within its life (a reboot just before the task is made counts: same attempt).
    const rebooted = input.imaging.reboots.some(
      (r) => r.host === imaging.host && r.atMs >= imaging.createdAtMs - 1_000 && r.atMs <= until,
    );
    if (rebooted) continue;
    const id = /booking (\S+)$/.exec(imaging.name)?.[1] ?? "?";
    rebootProblems.push(
      `booking ${id}: FOG task ${imaging.taskId} "${imaging.name}" on ${imaging.host} sat queued ${(((imaging.endedAtMs ?? until) - imaging.createdAtMs) / 1000).toFixed(0)} s (from ${(imaging.createdAtMs / 1000).toFixed(1)} s), the host never rebooted meanwhile`,
    );
  }

  // ---- no secret anywhere
  const secretProblems: string[] = [];
  const places: { where: string; lines: string[] }[] = [
    ...evidence.logFiles.map((f) => ({ where: `log/${f.file}`, lines: f.lines })),
    ...evidence.outputs.flatMap((o) => [
      { where: `listener ${o.pid} stdout`, lines: o.stdout.split("\n") },
      { where: `listener ${o.pid} stderr`, lines: o.stderr.split("\n") },
    ]),
    { where: "store", lines: evidence.storeDump },
    {
      where: "dashboard notes",
      lines: evidence.statusNotes.map((n) => `${n.title}\n${n.content}`),
    },
    {
      where: "operators' mail",
      lines: operatorMails.map((m) => `${m.subject}\n${m.text}`),
    },
  ];
  for (const { where, lines } of places) {
    const found = new Map<string, number>();
    lines.forEach((line, n) => {
      for (const [name, value] of input.secrets) {
        if (value.length >= 6 && line.includes(value) && !found.has(name)) found.set(name, n + 1);
      }
    });
    for (const [name, line] of found) secretProblems.push(`${name} in ${where} (line ${line})`);
  }

  // ---- the listener only ever ended when killed or stopped
  const exitProblems = input.unexpectedExits.map(
    (o) =>
      `listener ${o.pid} ${o.ended}: ${(o.stderr || o.stdout).trim().split("\n").slice(-3).join(" | ")}`,
  );

  // Evidence for each unfinished or wrongly failed booking: its warning and error log lines.
  const withLogs = (problems: string[], wanted?: (line: string) => boolean) =>
    problems.flatMap((line) => {
      const id = /^booking (\S+)/.exec(line)?.[1];
      return id ? [line, ...logLinesOf(input, id, 2, wanted).map((l) => `    log: ${l}`)] : [line];
    });
  // What a hostile field reached: the first lines that carry it on (a VPN user, a step's work).
  const hostileReach = (line: string) =>
    /"msg":"(VPN user created|VPN account made for the person|virtual pod built|installer started|deploy task created)"/.test(
      line,
    ) || /"level":(50|60)/.test(line);

  const check = (
    name: string,
    problems: string[],
    summary: string,
    notes: string[] = [],
  ): CheckResult => ({
    name,
    ok: problems.length === 0,
    details: problems.length === 0 ? [summary] : limited(problems),
    ...(notes.length > 0 ? { notes: limited(notes) } : {}),
  });
  const count = (o: Outcome) => [...outcomes.values()].filter((x) => x.outcome === o).length;
  const checks: CheckResult[] = [
    check(
      "every booking ends ready-then-released, released, cancelled, or failed with a reason",
      withLogs(outcomeProblems),
      `${input.tracks.length} bookings: ${count("ready-then-released")} ready then released, ${count("released")} released, ${count("cancelled")} cancelled, ${count("failed")} failed`,
      outcomeNotes,
    ),
    check("no host is ever held by two bookings", holdProblems, "none seen in the store's samples"),
    check(
      `no host quarantined unless it failed quarantine_after (${input.quarantineAfter}) times in a row`,
      quarantineProblems,
      `${quarantined.size} quarantined, each after ${input.quarantineAfter}+ failures`,
    ),
    check(
      "zero leftover VPN users, VMs, networks, FOG tasks of ended bookings",
      leftoverProblems,
      "none",
      leftoverNotes,
    ),
    check(
      "a dashboard note says the operators were told only when they were",
      noteProblems,
      `${toldNotes} notes say so, each with its mail`,
    ),
    check(
      "every hand-over delivered or recorded undelivered (operators told)",
      handoverProblems,
      `${handoverStats.delivered} delivered, ${handoverStats.undelivered} undelivered (operators told), ${handoverStats.withdrawn} withdrawn (booking ended first)`,
      handoverNotes,
    ),
    check("every failure mailed to the operators", failureMailProblems, "all"),
    check(
      "hostile bookings failed at the door (their host untouched)",
      withLogs(hostileProblems, hostileReach),
      "all",
    ),
    check(
      "no secret in any log line, store item, dashboard note or operators' mail",
      secretProblems,
      `${input.secrets.size} secrets looked for`,
    ),
    check(
      "every imaging LaaS asked FOG for had its host rebooted into it",
      withLogs(rebootProblems),
      `${input.imaging.imagings.size} imagings, ${input.imaging.reboots.length} reboots`,
    ),
    check("the listener ends only when killed or stopped", exitProblems, "it did"),
    check(
      "every request to the dashboard and FOG went through their fault proxies",
      input.traffic
        .filter((t) => t.received > t.forwarded)
        .map(
          (t) => `${t.service} received ${t.received} requests, its proxy passed on ${t.forwarded}`,
        ),
      input.traffic.map((t) => `${t.service} ${t.received}`).join(", "),
    ),
  ];
  return {
    outcomes,
    checks,
    failureKinds,
    leftovers: {
      vpnUsers: evidence.vpnEntries.length,
      vms,
      networks,
      fogTasks: activeTasks.length,
    },
  };
}
