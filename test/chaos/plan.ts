/**
 * A chaos run's plan, drawn from its seed alone: the bookings (host, installer, user, length,
 * hostile fields, what the dashboard does to them mid-flight) and the faults (what, when, for
 * how long, where). The same seed gives the same plan; what it meets on a real machine (how many
 * requests fall in a fault's window, which step a kill interrupts) depends on timing.
 */
import { Prng } from "./prng";

export const FAULT_KINDS = [
  "fog-500",
  "fog-hang",
  "fog-drop",
  "no-network-boot",
  "ssh-drop",
  "ldap-down",
  "smtp-down",
  "dashboard-500",
  "dashboard-html",
  "dashboard-truncated",
  "listener-kill",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What the dashboard endpoints faults aim at. */
export const DASHBOARD_ENDPOINTS = ["bookings", "users", "notes"] as const;
export type DashboardEndpoint = (typeof DASHBOARD_ENDPOINTS)[number];

export interface PlannedFault {
  kind: FaultKind;
  /** From the start of the run (ms). */
  atMs: number;
  /** How long the fault lasts (ms); for a kill, how long the listener stays down. */
  durationMs: number;
  /** Share of the requests (or host commands, for ssh-drop) in the window that it takes. */
  probability: number;
  /** FOG faults: only writes (task creation, host edits), or any request. */
  writesOnly?: boolean;
  /** Dashboard faults: which endpoint. */
  endpoint?: DashboardEndpoint;
  /** no-network-boot: the host (inventory index). */
  hostIndex?: number;
}

export const HOSTILE_KINDS = [
  "nul-scenario",
  "control-scenario",
  "control-purpose",
  "overlong-purpose",
  "overlong-scenario",
  "unknown-installer",
  "shell-user",
] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

export type MidFlight =
  | { action: "cancel"; afterMs: number }
  | { action: "shorten"; afterMs: number; leftMs: number }
  | { action: "extend"; afterMs: number; byMs: number };

export interface PlannedBooking {
  /** Dashboard booking id. */
  id: number;
  hostIndex: number;
  installer: string | null;
  scenario: string | null;
  purpose: string;
  /** Dashboard user id, or null for a booking that does not say who booked. */
  userId: number | null;
  hostile: HostileKind | null;
  /**
   * Put on the dashboard as soon as the host's previous booking ends on the dashboard (it then
   * waits for the host's release), rather than once that booking is over in LaaS.
   */
  backToBack: boolean;
  /** From being put on the dashboard to its start (ms). */
  startDelayMs: number;
  durationMs: number;
  midFlight: MidFlight | null;
}

export interface PlannedUser {
  id: number;
  username: string;
  email: string;
  withKey: boolean;
}

export interface ChaosPlan {
  seed: number;
  hosts: number;
  bookings: PlannedBooking[];
  users: PlannedUser[];
  faults: PlannedFault[];
  /** When the faults stop (ms from the start); the lab then settles. */
  faultsEndMs: number;
}

export interface PlanOptions {
  seed: number;
  bookings: number;
  hosts: number;
  /** Booking length range (ms). */
  durationMs?: [number, number];
  /** Listener kills over the run. */
  kills?: number;
  /** Faults of each other kind over the run (at least one each). */
  faultsPerKind?: number;
  /** Share of hostile bookings (default 0.1, at least one of each kind when there is room). */
  hostileShare?: number;
  /** Share of bookings the dashboard changes mid-flight (default 0.2). */
  midFlightShare?: number;
  /** The run's expected length, over which faults are spread (ms). */
  horizonMs?: number;
}

const INSTALLERS = ["Fuel", "Joid", "Compass", null] as const;
const SCENARIOS = ["os-nosdn-nofeature-ha", "os-odl-nofeature-ha", "os-nosdn-ovs-noha", null];

/** Users: keys, no key, no address, and one whose name is made of shell metacharacters. */
export const PLANNED_USERS: PlannedUser[] = [
  { id: 1, username: "ada", email: "ada@example.org", withKey: true },
  { id: 2, username: "grace", email: "grace@example.org", withKey: false },
  { id: 3, username: "linus", email: "", withKey: true },
  { id: 4, username: "katherine", email: "kj@example.org", withKey: true },
];
/** The hostile user (shell-user bookings): a name no shell, DN or file name should meet. */
export const HOSTILE_USER: PlannedUser = {
  id: 66,
  username: "eve;$(reboot)`id`|&>x",
  email: "eve@example.org",
  withKey: true,
};

/** What one hostile field looks like on the dashboard. */
function hostileBooking(kind: HostileKind, base: PlannedBooking): PlannedBooking {
  switch (kind) {
    case "nul-scenario":
      return { ...base, scenario: "os-nosdn\u0000-ha" };
    case "control-scenario":
      return { ...base, scenario: "os-nosdn\u001b[2J\r\nrm -rf /" };
    case "control-purpose":
      return { ...base, purpose: "chaos\u0000\u0007\u001b]0;owned\u0007\nline" };
    case "overlong-purpose":
      return { ...base, purpose: "p".repeat(20_000) };
    case "overlong-scenario":
      return { ...base, scenario: `os-${"x".repeat(4_000)}` };
    case "unknown-installer":
      return { ...base, installer: "Nonesuch" };
    case "shell-user":
      return { ...base, userId: HOSTILE_USER.id };
  }
}

export function makePlan(options: PlanOptions): ChaosPlan {
  const root = new Prng(options.seed, "plan");
  const bookingDraws = root.fork("plan:bookings");
  const faultDraws = root.fork("plan:faults");
  const [minMs, maxMs] = options.durationMs ?? [16_000, 28_000];

  const hostileCount = Math.max(1, Math.round(options.bookings * (options.hostileShare ?? 0.1)));
  // Hostile bookings are spread over the run, not bunched at its start.
  const hostileAt = new Set(
    bookingDraws
      .shuffle([...Array(options.bookings).keys()].slice(1))
      .slice(0, Math.min(hostileCount, options.bookings - 1)),
  );
  const hostileKinds = bookingDraws.shuffle(HOSTILE_KINDS);
  let hostileIndex = 0;

  const bookings: PlannedBooking[] = [];
  for (let i = 0; i < options.bookings; i++) {
    const durationMs = bookingDraws.int(minMs, maxMs);
    let booking: PlannedBooking = {
      id: 7000 + i,
      hostIndex: i % options.hosts,
      installer: bookingDraws.pick(INSTALLERS),
      scenario: bookingDraws.pick(SCENARIOS),
      purpose: `chaos booking ${i}`,
      userId: bookingDraws.chance(0.08) ? null : bookingDraws.pick(PLANNED_USERS).id,
      hostile: null,
      backToBack: bookingDraws.chance(0.3),
      startDelayMs: bookingDraws.int(0, 1_500),
      durationMs,
      midFlight: null,
    };
    if (hostileAt.has(i)) {
      const kind = hostileKinds[hostileIndex++ % hostileKinds.length]!;
      booking = { ...hostileBooking(kind, booking), hostile: kind };
    } else if (bookingDraws.chance(options.midFlightShare ?? 0.2)) {
      const afterMs = bookingDraws.int(1_000, durationMs - 2_000);
      const action = bookingDraws.pick(["cancel", "shorten", "extend"] as const);
      booking.midFlight =
        action === "cancel"
          ? { action, afterMs }
          : action === "shorten"
            ? { action, afterMs, leftMs: bookingDraws.int(200, 2_000) }
            : { action, afterMs, byMs: bookingDraws.int(3_000, 12_000) };
    }
    bookings.push(booking);
  }

  // Faults over the run's expected length: one slot per fault, shuffled, so kinds interleave
  // and two faults seldom start together; each starts somewhere in its slot.
  const perHost = Math.ceil(options.bookings / options.hosts);
  const horizonMs = options.horizonMs ?? perHost * ((minMs + maxMs) / 2 + 4_000);
  const faultsEndMs = horizonMs;
  const perKind = Math.max(1, options.faultsPerKind ?? 2);
  const kills = options.kills ?? 4;
  const slots: FaultKind[] = [];
  for (const kind of FAULT_KINDS) {
    const count = kind === "listener-kill" ? kills : perKind;
    for (let n = 0; n < count; n++) slots.push(kind);
  }
  const order = faultDraws.shuffle(slots);
  const slotMs = (horizonMs - 5_000) / order.length;
  const faults: PlannedFault[] = order.map((kind, n) => {
    const atMs = Math.round(5_000 + n * slotMs + faultDraws.next() * slotMs * 0.5);
    const fault: PlannedFault = {
      kind,
      atMs,
      durationMs: faultDraws.int(3_000, 10_000),
      probability: 1,
    };
    switch (kind) {
      case "fog-500":
      case "fog-hang":
      case "fog-drop":
        fault.writesOnly = faultDraws.chance(0.5);
        fault.probability = fault.writesOnly ? 1 : faultDraws.pick([0.3, 0.6, 1]);
        // Writes are few (a task per phase, an image per host): their windows are longer.
        fault.durationMs = fault.writesOnly
          ? faultDraws.int(8_000, 20_000)
          : faultDraws.int(3_000, 8_000);
        break;
      case "no-network-boot":
        fault.hostIndex = faultDraws.int(0, options.hosts - 1);
        fault.durationMs = faultDraws.int(5_000, 30_000);
        break;
      case "ssh-drop":
        fault.probability = faultDraws.pick([0.1, 0.25, 0.5]);
        fault.durationMs = faultDraws.int(4_000, 12_000);
        break;
      case "ldap-down":
      case "smtp-down":
        fault.durationMs = faultDraws.int(3_000, 15_000);
        break;
      case "dashboard-500":
      case "dashboard-html":
      case "dashboard-truncated":
        fault.endpoint = "bookings"; // set below, in turn
        fault.probability = faultDraws.pick([0.5, 1]);
        // Set below with the endpoint: users and notes are asked for seldom, so their windows
        // are longer than the bookings list's (read every poll).
        fault.durationMs = faultDraws.int(4_000, 10_000);
        break;
      case "listener-kill":
        fault.durationMs = faultDraws.int(200, 3_000);
        break;
    }
    return fault;
  });
  // Each dashboard fault kind meets the endpoints in turn (its n-th fault the n-th endpoint, each
  // kind starting one further), so that a few faults of each kind cover every endpoint.
  const seen = new Map<FaultKind, number>();
  for (const fault of [...faults].sort((a, b) => a.atMs - b.atMs)) {
    if (fault.endpoint === undefined) continue;
    const n = seen.get(fault.kind) ?? 0;
    seen.set(fault.kind, n + 1);
    const offset = FAULT_KINDS.indexOf(fault.kind);
    fault.endpoint = DASHBOARD_ENDPOINTS[(offset + n) % DASHBOARD_ENDPOINTS.length]!;
    if (fault.endpoint !== "bookings") fault.durationMs *= 3;
  }
  faults.sort((a, b) => a.atMs - b.atMs);
  return {
    seed: options.seed,
    hosts: options.hosts,
    bookings,
    users: [...PLANNED_USERS, HOSTILE_USER],
    faults,
    faultsEndMs,
  };
}
