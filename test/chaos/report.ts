/**
 * A chaos run's figures as Markdown: what RELIABILITY.md shows (bookings, faults injected by
 * kind, outcomes, leftovers, time, seed, command) and each invariant with its evidence.
 */
import { cpus, totalmem } from "node:os";
import type { Outcome } from "./invariants";
import { FAULT_KINDS, type FaultKind } from "./plan";
import type { ChaosResult } from "./run";

const FAULT_NAMES: Record<FaultKind, { what: string; unit: string }> = {
  "fog-500": { what: "FOG answers 500", unit: "requests" },
  "fog-hang": { what: "FOG acts, its answer never comes", unit: "requests" },
  "fog-drop": { what: "FOG acts, the connection is reset", unit: "requests" },
  "no-network-boot": { what: "a host does not network-boot", unit: "reboots" },
  "ssh-drop": { what: "relay SSH connections cut mid-command", unit: "cuts" },
  "ldap-down": {
    what: "LDAP down (open connections cut, new ones refused)",
    unit: "connections cut",
  },
  "smtp-down": {
    what: "SMTP down (open connections cut, new ones refused)",
    unit: "connections cut",
  },
  "dashboard-500": { what: "dashboard answers 500", unit: "requests" },
  "dashboard-html": { what: "dashboard answers an HTML page", unit: "requests" },
  "dashboard-truncated": { what: "dashboard answer truncated", unit: "requests" },
  "listener-kill": { what: "listener SIGKILLed, started again", unit: "kills" },
};

const OUTCOMES: Outcome[] = [
  "ready-then-released",
  "released",
  "cancelled",
  "failed",
  "unfinished",
  "missing",
];

function table(head: string[], rows: (string | number)[][]): string[] {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map(
      (row) => `| ${row.map((cell) => String(cell).replaceAll("|", "\\|")).join(" | ")} |`,
    ),
  ];
}

/** Control characters (hostile fields end up in the evidence) shown as escapes. */
function printable(text: string): string {
  let out = "";
  for (const c of text) {
    const code = c.charCodeAt(0);
    out += code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, "0")}` : c;
  }
  return out;
}

export function chaosCommand(result: ChaosResult): string {
  return `npm run chaos -- --seed ${result.plan.seed} --bookings ${result.plan.bookings.length} --hosts ${result.plan.hosts}`;
}

export function renderReport(result: ChaosResult, command = chaosCommand(result)): string {
  const { judged, counts, plan } = result;
  const lines: string[] = [];
  const s = (ms: number) => `${(ms / 1000).toFixed(0)} s`;
  lines.push(
    `Chaos run, seed ${plan.seed}: ${plan.bookings.length} bookings on ${plan.hosts} hosts.`,
    "",
    `- **Command**: \`${command}\``,
    `- **Machine**: ${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
    `- **Date**: ${result.startedAt.toISOString().slice(0, 10)}.`,
    `- **Time**: ${s(result.timings.totalMs)} in all — lab start ${s(result.timings.setupMs)}, bookings and faults ${s(result.timings.runMs)}, settling ${s(result.timings.settleMs)} (${result.settled ? "settled" : "did NOT settle within the limit"}).`,
    `- **Store samples** during the run: ${result.looks}.`,
    "",
    "Faults injected:",
    "",
  );
  lines.push(
    ...table(
      ["fault", "windows", "hit", "unit"],
      FAULT_KINDS.map((kind) => [
        FAULT_NAMES[kind].what,
        counts.windows[kind] ?? 0,
        kind === "no-network-boot" ? counts.missedNetworkBoots : (counts.hits[kind] ?? 0),
        counts.downMs[kind] === undefined
          ? FAULT_NAMES[kind].unit
          : `${FAULT_NAMES[kind].unit}; down ${s(counts.downMs[kind])} in all`,
      ]),
    ),
  );
  const dashboard = Object.entries(counts.dashboardHits).sort();
  if (dashboard.length > 0) {
    lines.push(
      "",
      `Dashboard faults by endpoint: ${dashboard.map(([label, n]) => `${label} ${n}`).join(", ")}.`,
    );
  }
  const hostile = plan.bookings.filter((b) => b.hostile);
  const released = result.operatorReleases;
  lines.push(
    "",
    `The operator released ${released.length} quarantined host(s) with \`laas host release\` (${released.filter((r) => r.code === 0).length} exited 0)${released.length > 0 ? `: ${released.map((r) => `${r.host} at ${s(r.atMs)} → ${r.code}${r.code === 0 ? "" : ` (${printable(r.output).slice(0, 200)})`}`).join("; ")}` : ""}.`,
  );
  lines.push(
    "",
    `Bookings changed on the dashboard mid-flight: ${result.midFlight.cancel} cancelled, ${result.midFlight.shorten} shortened, ${result.midFlight.extend} extended. Hostile bookings: ${hostile.length} (${[...new Set(hostile.map((b) => b.hostile))].join(", ")}).`,
    "",
    "Outcomes:",
    "",
  );
  const byOutcome = new Map<Outcome, number>();
  for (const { outcome } of judged.outcomes.values()) {
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
  }
  lines.push(
    ...table(
      ["outcome", "bookings"],
      OUTCOMES.filter((o) => (byOutcome.get(o) ?? 0) > 0 || o !== "missing").map((o) => [
        o,
        byOutcome.get(o) ?? 0,
      ]),
    ),
  );
  const kinds = Object.entries(judged.failureKinds).sort((a, b) => b[1] - a[1]);
  if (kinds.length > 0) {
    lines.push("", `Failures by error: ${kinds.map(([k, n]) => `${k} ${n}`).join(", ")}.`);
  }
  const left = judged.leftovers;
  lines.push(
    "",
    `Leftovers: ${left.vpnUsers} VPN users, ${left.vms} VMs, ${left.networks} networks, ${left.fogTasks} active FOG tasks.`,
    "",
    "Invariants:",
    "",
  );
  for (const check of judged.checks) {
    lines.push(`- ${check.ok ? "held" : "**FAILED**"}: ${check.name}`);
    for (const detail of check.details) lines.push(`  - ${printable(detail)}`);
    for (const note of check.notes ?? []) lines.push(`  - note: ${printable(note)}`);
  }
  return lines.join("\n");
}

/** One row per booking: what was planned, when it was seen where, how it ended. */
export function renderBookings(result: ChaosResult): string {
  const t = (ms: number | undefined) => (ms === undefined ? "" : (ms / 1000).toFixed(1));
  const rows = result.tracks.map((track) => {
    const id = String(track.plan.id);
    const seen = result.seen.get(id);
    const judged = result.judged.outcomes.get(id);
    const change = track.plan.midFlight;
    return [
      id,
      result.plan.bookings.length > 0 ? `host ${track.plan.hostIndex}` : "",
      track.plan.hostile ?? track.plan.installer ?? "none",
      change ? change.action : "",
      t(track.addedAtMs ?? undefined),
      t(seen?.firstSeen.get("provisioning")),
      t(seen?.firstSeen.get("ready")),
      t(seen?.firstSeen.get("releasing")),
      judged?.outcome ?? "",
      printable((judged?.booking?.failure ?? judged?.booking?.progress ?? "").slice(0, 160)),
    ];
  });
  return [
    "Bookings (times in s from the run's start, as first seen in the store's samples):",
    "",
    ...table(
      [
        "booking",
        "host",
        "installer / hostile",
        "mid-flight",
        "placed",
        "provisioning",
        "ready",
        "releasing",
        "outcome",
        "failure / last progress",
      ],
      rows,
    ),
  ].join("\n");
}
