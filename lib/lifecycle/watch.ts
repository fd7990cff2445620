/**
 * The lab's one watcher. Once per cycle it looks at the world for every booking whose workflow
 * waits on it — one read of FOG's active tasks for all hosts being imaged, one relay session for
 * every host coming up and every installer running — and answers each wait's task token: success
 * when the event came, failure at the configured deadline, a heartbeat otherwise. Progress goes on
 * the booking as it goes.
 *
 * What it finds is written on the booking before the token is answered (recordOutcome), so an
 * answer lost with a restart is not lost: the workflow step that waits again finds it there.
 * Running two watchers at once (a slow cycle overlapping the next) is harmless: outcomes are
 * conditional writes, and a token answered twice answers `gone` the second time.
 *
 * In the cloud it is the scheduled `watch` function (once a minute, EventBridge's smallest rate);
 * locally the listener runs it every `watch_interval` seconds.
 */

import type { InstallerConfig } from "../config/types";
import type { Booking } from "../domain/booking";
import type { JsonObject, WaitEvent, WaitOutcome, WaitRecord } from "../domain/run";
import { errorMessage } from "../errors";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { settledWithin } from "../time";
import { imagingConfig } from "./current-run";
import { updateBookingProgress } from "./progress";
import { isCurrentRun, noteProgress } from "./transitions";
import { markAnswered, recordOutcome } from "./waits";
import { lookAtImaging } from "./watch-imaging";
import { lookAtLabHosts } from "./watch-lab-hosts";

/** A booking whose workflow waits for an event, as the lookers get it. */
export interface Waiting {
  booking: Booking;
  wait: WaitRecord;
  input: PhaseInput;
  config: InstallerConfig;
}

/** What a look found for one wait. */
export type Look =
  | { kind: "pending"; progress: string | null }
  | { kind: "done"; result: JsonObject; progress: string }
  | { kind: "failed"; error: string; cause: string };

export type Looks = Map<string, Look>;

export interface WatchReport {
  /** Waits looked at this cycle. */
  waiting: number;
  /** Bookings whose wait the event completed, and those it failed. */
  completed: string[];
  failed: string[];
  heartbeats: number;
  /** Tokens their task no longer waited on (an execution resumed elsewhere, or ended). */
  gone: number;
}

export function isPastDeadline(wait: WaitRecord, now: Date): boolean {
  return now.getTime() > Date.parse(wait.deadline);
}

export interface WatchOptions {
  /**
   * How long this cycle's looks may take (default 60 s, below the watch function's 120 s):
   * a look not done by then counts as "not yet" this cycle.
   */
  budgetMs?: number;
}

const DEFAULT_BUDGET_MS = 60_000;

export async function watch(rt: Runtime, options: WatchOptions = {}): Promise<WatchReport> {
  const report: WatchReport = { waiting: 0, completed: [], failed: [], heartbeats: 0, gone: 0 };
  const waiting: Waiting[] = [];
  const unanswered: Waiting[] = [];
  for (const booking of await rt.store.listBookings()) {
    const wait = booking.wait;
    if (!wait || wait.answeredAt !== null) continue;
    if (!isCurrentRun(booking, wait.phase, wait.generation)) continue;
    const entry: Waiting = {
      booking,
      wait,
      input: {
        bookingId: booking.id,
        hostName: booking.hostName,
        phase: wait.phase,
        generation: wait.generation,
      },
      config: imagingConfig(rt, booking, wait.phase),
    };
    // Found before, but its answer did not get through (a crash in between): answered again.
    if (wait.outcome) unanswered.push(entry);
    else waiting.push(entry);
  }
  report.waiting = waiting.length;
  // Heartbeats first: however long the looks take, no wait goes without its heartbeat.
  for (const entry of waiting) {
    await isolated(rt, entry, async () => {
      const answered = await rt.engine.sendTaskHeartbeat(entry.wait.token);
      if (answered === "accepted") report.heartbeats += 1;
      else report.gone += 1;
    });
  }
  for (const entry of unanswered) {
    const outcome = entry.wait.outcome;
    if (outcome) await isolated(rt, entry, () => answer(rt, entry, outcome, report));
  }

  const looks: Looks = new Map();
  const byEvent = (event: WaitEvent) => waiting.filter((w) => w.wait.event === event);
  await settledWithin(
    Promise.all([
      guarded(rt, "imaging", () => lookAtImaging(rt, byEvent("imaged"), looks)),
      guarded(rt, "lab hosts", () =>
        lookAtLabHosts(rt, byEvent("host-up"), byEvent("installer-done"), looks),
      ),
    ]),
    options.budgetMs ?? DEFAULT_BUDGET_MS,
  );

  for (const entry of waiting) {
    const look = looks.get(entry.booking.id) ?? { kind: "pending", progress: null };
    await isolated(rt, entry, () => settle(rt, entry, look, report));
  }
  if (report.completed.length + report.failed.length > 0 || report.gone > 0) {
    rt.logger.info(report, "watch cycle");
  }
  return report;
}

/** Records what a look found and answers the token, or notes progress while it is not yet. */
async function settle(rt: Runtime, entry: Waiting, look: Look, report: WatchReport) {
  const { phase, generation } = entry.input;
  if (look.kind === "pending") {
    if (look.progress) {
      await updateBookingProgress(
        rt,
        entry.booking.id,
        noteProgress(phase, generation, look.progress),
      );
    }
    return;
  }
  const outcome: WaitOutcome =
    look.kind === "done"
      ? { ok: true, result: look.result }
      : { ok: false, error: look.error, cause: look.cause };
  // Only for the token this look was for: one replaced meanwhile is looked at next cycle. The
  // progress goes in the same write, and only with the outcome.
  const progress = look.kind === "done" ? noteProgress(phase, generation, look.progress) : null;
  const { changed } = await updateBookingProgress(rt, entry.booking.id, (current) => {
    const recorded = recordOutcome(entry.wait, outcome, rt.now())(current);
    return recorded && progress ? (progress(recorded) ?? recorded) : recorded;
  });
  if (!changed) return;
  await answer(rt, entry, outcome, report);
}

/** One booking's trouble (a store write, an engine call) must not stop the others. */
async function isolated(rt: Runtime, entry: Waiting, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    rt.logger.warn(
      { bookingId: entry.booking.id, event: entry.wait.event, err: errorMessage(error) },
      "watcher could not handle a wait; it tries again next cycle",
    );
  }
}

/** One looker's failure (FOG or the relay down) must not stop the other: its waits go on. */
async function guarded(rt: Runtime, what: string, look: () => Promise<void>): Promise<void> {
  try {
    await look();
  } catch (error) {
    rt.logger.warn({ err: errorMessage(error) }, `watcher could not look at ${what}`);
  }
}

async function answer(
  rt: Runtime,
  entry: Waiting,
  outcome: WaitOutcome,
  report: WatchReport,
): Promise<void> {
  const { token } = entry.wait;
  const answered = outcome.ok
    ? await rt.engine.sendTaskSuccess(token, outcome.result)
    : await rt.engine.sendTaskFailure(token, outcome.error, outcome.cause);
  if (answered === "gone") report.gone += 1;
  if (outcome.ok) report.completed.push(entry.booking.id);
  else report.failed.push(entry.booking.id);
  await rt.store.updateBooking(entry.booking.id, markAnswered(token, rt.now()));
  rt.logger.info(
    {
      bookingId: entry.booking.id,
      event: entry.wait.event,
      outcome: outcome.ok ? "done" : outcome.error,
      token: answered,
    },
    outcome.ok ? "wait completed" : "wait failed",
  );
}
