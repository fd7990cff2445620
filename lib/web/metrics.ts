/**
 * What GET /metrics answers: the lab's figures in Prometheus's text format, from one read of the
 * store (its hosts and bookings) and, when given, one of FOG's active tasks.
 *
 * Every figure is a count over what the store holds at the time of the call, so each one may go
 * down as well as up — the two duration histograms too: they describe the bookings the store
 * holds now (ready ones, and released ones until `booking_retention_days` removes them), not
 * every run since the listener started, so read them as they are rather than through rate().
 *
 * No label carries free text: states, wait events and failure kinds come from fixed lists, and
 * a failure whose kind is not on the list is labelled "other". No booking id, host name or user
 * appears.
 */
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import {
  BOOKING_STATES,
  type Booking,
  type BookingState,
  HANDOVER_STATES,
  type HandoverState,
  isActive,
  type Phase,
} from "../domain/booking";
import { HOST_STATES, type HostState } from "../domain/host";
import { WAIT_EVENTS } from "../domain/run";
import { recordedFailure } from "../lifecycle/failure-record";
import { START_IMAGING } from "../lifecycle/imaging";
import { START_INSTALLER } from "../lifecycle/installer";
import { isCurrentRun, isFinished } from "../lifecycle/transitions";
import { recordedVpnEntry } from "../lifecycle/vpn-record";
import { waitKey } from "../lifecycle/waits";
import type { Imager } from "../ports/imager";
import type { Store } from "../ports/store";

/** FOG's active tasks, by FOG's task state. */
export interface FogQueue {
  queued: number;
  checkedIn: number;
  inProgress: number;
}

export interface MetricsSources {
  store: Pick<Store, "listHosts" | "listBookings">;
  now(): Date;
  /** FOG's active tasks by state, or null when FOG could not be read */
  fogQueue?: () => Promise<FogQueue | null>;
}

export interface MetricsOptions {
  /**
   * Node.js's own figures as well (process_* and nodejs_*: CPU, memory, event loop, GC): for a
   * long-running listener. They are collected once per process, whatever the number of calls.
   */
  processMetrics?: boolean;
  /** How long FOG may take to answer before it counts as down (laas_fog_up 0). */
  fogTimeoutMs?: number;
}

export const DEFAULT_FOG_TIMEOUT_MS = 5_000;

/** Seconds: an imaging takes minutes, a slow one with its installer an hour or two. */
export const DURATION_BUCKETS_SECONDS = [60, 300, 600, 900, 1200, 1800, 2700, 3600, 7200];

/**
 * The step labels a failure may carry: the workflow states failedStep (failure-record.ts) names,
 * and "Poll" for a booking refused at poll.
 */
const FAILURE_STEPS = new Set([
  "Poll",
  "StartImaging",
  "AwaitImaging",
  "AwaitHost",
  "BuildPod",
  "StartInstaller",
  "AwaitInstaller",
  "CreateVpnUser",
  "SetHostAccess",
  "CreateVpnUser or SetHostAccess",
  "MarkReady",
  "RemovePod",
  "StartCleanImaging",
  "MarkReleased",
]);

/**
 * The reason labels a failure may carry: the error names LaaS's own errors have, the refusal at
 * poll, and those the workflow engines raise. Any other name (a library's) is "other".
 */
const FAILURE_REASONS = new Set([
  "AddressNotFound",
  "AddressOutsideLab",
  "AuthError",
  "CommandFailed",
  "CommandTimeout",
  "ConfigError",
  "Conflict",
  "DirectoryError",
  "HostBusy",
  "HostIdentity",
  "HostUnreachable",
  "ImagingFailed",
  "InstallerFailed",
  "InvalidBooking",
  "InvalidCommand",
  "InvalidCredential",
  "InvalidUserName",
  "LaasError",
  "LostRace",
  "MailRejected",
  "NoRecipient",
  "NotFoundError",
  "ProtocolError",
  "RebootFailed",
  "RecipientsRejected",
  "Refusal",
  "SealedCredentials",
  "StoreLocked",
  "StoreThreadError",
  "Superseded",
  "TransientError",
  "UnsafeFolder",
  "UsageError",
  "States.HeartbeatTimeout",
  "States.Runtime",
  "States.TaskFailed",
  "States.Timeout",
  "LocalEngine.Aborted",
]);

const OTHER = "other";

/**
 * A failed booking's kind of failure, as labels: the step that failed and the error's name, as
 * RecordFailure recorded them in the run. A booking whose record is gone — a cleaning run took
 * the failed run's place on it — is known by the error name its failure text begins with
 * (describeCaught writes "<name>: …"); its step is then "other", as is any name or step not on
 * the lists above.
 */
export function failureKind(booking: Booking): { step: string; reason: string } {
  // The run that failed is the booking's last one (as `laas status` reads it).
  const phase: Phase =
    booking.run?.phase ?? (booking.releaseGeneration > 0 ? "release" : "provision");
  const recorded = recordedFailure(booking, phase);
  const name = recorded?.error ?? /^([A-Za-z][\w.]*)(?::|$)/.exec(booking.failure ?? "")?.[1];
  return {
    step: recorded && FAILURE_STEPS.has(recorded.step) ? recorded.step : OTHER,
    reason: name !== undefined && FAILURE_REASONS.has(name) ? name : OTHER,
  };
}

/** The records a run's work leaves before its Mark step (MarkReady, MarkReleased) ends it. */
const WORK_STEPS: Record<Phase, readonly string[]> = {
  provision: [
    START_IMAGING,
    waitKey("imaged"),
    waitKey("host-up"),
    "buildPod",
    START_INSTALLER,
    waitKey("installer-done"),
    "setHostAccess",
  ],
  release: ["removePod", START_IMAGING, waitKey("imaged")],
};

/**
 * Seconds the booking's current run of `phase` took, from its records: from the earliest write
 * of any record in the run to the last of its work steps finishing. MarkReady and MarkReleased
 * record nothing, but run right after that last step, so the end is close; the start is the
 * NoteStarted status note where notes are on, else StartImaging (provision) or RemovePod
 * (release) finishing — seconds after the run began. Records written after the Mark step (the
 * ready or released note) are left out. Null when the run has no such records.
 */
export function runDurationSeconds(booking: Booking, phase: Phase): number | null {
  const run = booking.run;
  const generation =
    phase === "provision" ? booking.provisionGeneration : booking.releaseGeneration;
  if (!run || run.phase !== phase || run.generation !== generation) return null;
  const times = (records: [string, { at: string; done: boolean }][]) =>
    records.map(([, record]) => Date.parse(record.at)).filter((ms) => Number.isFinite(ms));
  const all = Object.entries(run.steps);
  const starts = times(all);
  const ends = times(all.filter(([key, r]) => r.done && WORK_STEPS[phase].includes(key)));
  if (starts.length === 0 || ends.length === 0) return null;
  const seconds = (Math.max(...ends) - Math.min(...starts)) / 1000;
  return seconds >= 0 ? seconds : null;
}

/**
 * Whether the booking's current release run ended well: released, or the cleaning after a failed
 * provision done (the booking stays failed, with no failure recorded in that run).
 */
function releaseSucceeded(booking: Booking): boolean {
  if (booking.state === "released") return true;
  return (
    booking.state === "failed" &&
    booking.run?.phase === "release" &&
    recordedFailure(booking, "release") === null
  );
}

/** A fogQueue source reading FOG's active tasks once; null when FOG cannot be read. */
export function fogQueueOf(imager: Pick<Imager, "activeTasks">): () => Promise<FogQueue | null> {
  return async () => {
    try {
      const tasks = await imager.activeTasks();
      const inState = (id: number) => tasks.filter((task) => task.stateId === id).length;
      return { queued: inState(1), checkedIn: inState(2), inProgress: inState(3) };
    } catch {
      return null;
    }
  };
}

/**
 * The figures, as the text Prometheus scrapes, and the content type to serve it with. Rejects
 * when the store cannot be read (the scrape fails: Prometheus's own `up` shows it); FOG that
 * cannot be read is laas_fog_up 0 instead.
 */
export async function metricsText(
  sources: MetricsSources,
  options: MetricsOptions = {},
): Promise<{ contentType: string; body: string }> {
  const fogQueue = sources.fogQueue;
  const [hosts, bookings, fog] = await Promise.all([
    sources.store.listHosts(),
    sources.store.listBookings(),
    fogQueue ? readFog(fogQueue, options.fogTimeoutMs ?? DEFAULT_FOG_TIMEOUT_MS) : undefined,
  ]);
  const now = sources.now().getTime();
  const registry = new Registry();
  const gauge = <T extends string>(name: string, help: string, labelNames: readonly T[] = []) =>
    new Gauge<T>({ name, help, labelNames, registers: [registry] });
  const histogram = (name: string, help: string) =>
    new Histogram({ name, help, buckets: DURATION_BUCKETS_SECONDS, registers: [registry] });

  const bookingStates = countBy(BOOKING_STATES, bookings, (b): BookingState => b.state);
  const bookingsByState = gauge("laas_bookings", "Bookings the store holds, by state.", ["state"]);
  for (const [state, count] of bookingStates) bookingsByState.set({ state }, count);
  gauge("laas_bookings_active", "Bookings provisioning, ready or releasing.").set(
    bookings.filter((b) => isActive(b.state)).length,
  );
  gauge(
    "laas_bookings_past_start",
    "Scheduled bookings whose start has passed and whose provisioning has not begun.",
  ).set(bookings.filter((b) => b.state === "scheduled" && Date.parse(b.start) <= now).length);
  gauge(
    "laas_bookings_past_end",
    "Ready bookings whose end has passed and whose release has not begun.",
  ).set(bookings.filter((b) => b.state === "ready" && Date.parse(b.end) <= now).length);
  gauge(
    "laas_bookings_cleanup_pending",
    "Failed bookings whose host is still to be cleaned by a release run.",
  ).set(bookings.filter((b) => b.state === "failed" && b.cleanup !== null).length);
  gauge(
    "laas_vpn_users_to_sweep",
    "Bookings that are over but still record a VPN user, which the sweep is to remove.",
  ).set(bookings.filter((b) => isFinished(b.state) && recordedVpnEntry(b.access) !== null).length);

  const failures = gauge(
    "laas_booking_failures",
    "Failed bookings the store holds, by the step that failed and the error's name ('other' when not a known one).",
    ["step", "reason"],
  );
  for (const booking of bookings) {
    if (booking.state === "failed") failures.inc(failureKind(booking));
  }

  const withAccess = bookings.flatMap((b) => (b.access ? [b.access] : []));
  const handovers = countBy(HANDOVER_STATES, withAccess, (a): HandoverState => a.handover);
  gauge(
    "laas_handovers_pending",
    "Bookings whose hand-over to the user (VPN account, root password, SSH key) is not yet delivered.",
  ).set(handovers.get("pending") ?? 0);
  const handoversByState = gauge(
    "laas_handovers",
    "Bookings with access made for their user, by the state of its hand-over.",
    ["state"],
  );
  for (const [state, count] of handovers) handoversByState.set({ state }, count);

  const waiting = bookings.flatMap((b) =>
    b.wait && b.wait.outcome === null && isCurrentRun(b, b.wait.phase, b.wait.generation)
      ? [b.wait]
      : [],
  );
  const waitsByEvent = gauge(
    "laas_booking_waits",
    "Bookings whose run waits for an event of the lab (imaged, host-up, installer-done).",
    ["event"],
  );
  const oldestWait = gauge(
    "laas_booking_oldest_wait_seconds",
    "How long the longest current wait for each event has lasted, in seconds (0 when none waits).",
    ["event"],
  );
  for (const event of WAIT_EVENTS) {
    const these = waiting.filter((w) => w.event === event);
    waitsByEvent.set({ event }, these.length);
    const longest = Math.max(0, ...these.map((w) => (now - Date.parse(w.since)) / 1000));
    oldestWait.set({ event }, Number.isFinite(longest) ? longest : 0);
  }
  gauge(
    "laas_booking_waits_overdue",
    "Waits past their deadline with no outcome yet: the watcher should have failed them.",
  ).set(waiting.filter((w) => Date.parse(w.deadline) <= now).length);

  const hostStates = countBy(HOST_STATES, hosts, (h): HostState => h.state);
  const hostsByState = gauge("laas_hosts", "Lab hosts, by state.", ["state"]);
  for (const [state, count] of hostStates) hostsByState.set({ state }, count);
  gauge(
    "laas_hosts_failing",
    "Hosts in service with failed provisions or cleanings in a row (a streak that quarantines them).",
  ).set(hosts.filter((h) => h.failures > 0 && h.state !== "quarantined").length);

  const provisioning = histogram(
    "laas_provisioning_duration_seconds",
    "How long the provisioning of each booking ready now took, in seconds: from its run's first record to its last step before MarkReady.",
  );
  const release = histogram(
    "laas_release_duration_seconds",
    "How long the release (or cleaning) of each booking the store holds took, in seconds: from its run's first record to the clean image written.",
  );
  for (const booking of bookings) {
    // A provision run ended well when it got the booking ready (and release has not begun).
    const provisioned = booking.state === "ready" ? runDurationSeconds(booking, "provision") : null;
    if (provisioned !== null) provisioning.observe(provisioned);
    const released = releaseSucceeded(booking) ? runDurationSeconds(booking, "release") : null;
    if (released !== null) release.observe(released);
  }

  if (fog !== undefined) {
    gauge("laas_fog_up", "Whether FOG answered for its active tasks (1) or not (0).").set(
      fog ? 1 : 0,
    );
    if (fog) {
      const tasks = gauge("laas_fog_tasks", "FOG's active imaging tasks, by FOG's task state.", [
        "state",
      ]);
      tasks.set({ state: "queued" }, fog.queued);
      tasks.set({ state: "checked_in" }, fog.checkedIn);
      tasks.set({ state: "in_progress" }, fog.inProgress);
    }
  }

  const served = options.processMetrics ? Registry.merge([registry, processRegistry()]) : registry;
  return { contentType: registry.contentType, body: await served.metrics() };
}

/** Count of `items` for each of `keys` (0 for those none has); items of other keys are left out. */
function countBy<K extends string, T>(
  keys: readonly K[],
  items: readonly T[],
  keyOf: (item: T) => K,
): Map<K, number> {
  const counts = new Map<K, number>(keys.map((key) => [key, 0]));
  for (const item of items) {
    const key = keyOf(item);
    const count = counts.get(key);
    if (count !== undefined) counts.set(key, count + 1);
  }
  return counts;
}

/**
 * FOG's queue, or null when it fails or takes longer than `timeoutMs`: a FOG that is down must
 * not hold up the lab's other figures.
 */
async function readFog(
  fogQueue: () => Promise<FogQueue | null>,
  timeoutMs: number,
): Promise<FogQueue | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
    timer.unref();
  });
  try {
    const read = Promise.resolve()
      .then(fogQueue)
      .catch(() => null);
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}

let processFigures: Registry | null = null;

/**
 * Node.js's figures, in one registry for the process: collectDefaultMetrics starts observers
 * (GC, event loop delay) that are never stopped, so it must run once, not once per call.
 */
function processRegistry(): Registry {
  if (!processFigures) {
    processFigures = new Registry();
    collectDefaultMetrics({ register: processFigures });
  }
  return processFigures;
}
