/**
 * Waiting for the world as callback tasks. AwaitImaging, AwaitHost and AwaitInstaller invoke
 * awaitEvent with their task token: it writes the token on the booking (its `wait`) and returns,
 * and the workflow then waits — no function runs meanwhile — until the lab's watcher
 * (watch.ts) completes the token when the event comes, or fails it at the deadline.
 *
 * The wait is registered again with a new token when a heartbeat timeout retries the task, or
 * when a restarted local engine resumes the execution there. It keeps its first registration's
 * deadline, and an outcome the watcher recorded meanwhile (for a token that went away) is
 * answered at once rather than waited for again.
 */

import type { InstallerConfig } from "../config/types";
import type { Booking } from "../domain/booking";
import type { JsonObject, WaitEvent, WaitOutcome, WaitRecord } from "../domain/run";
import { LaasError } from "../errors";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { doneResult, recordDone } from "./checkpoints";
import { imagingConfig, loadCurrentBooking } from "./current-run";
import { updateBookingProgress } from "./progress";
import { isCurrentRun, noteProgress } from "./transitions";

type BookingChange = (current: Booking) => Booking | null;

export interface AwaitEventInput extends PhaseInput {
  event: WaitEvent;
  taskToken: string;
}

/** The step record a completed wait leaves in its run. */
export function waitKey(event: WaitEvent): string {
  return `await:${event}`;
}

/** A failure the watcher recorded, thrown again under its own name for the workflow's Catch. */
export class RecordedFailure extends LaasError {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Seconds the configured deadline of each wait gives, from its first registration. */
export function deadlineSeconds(event: WaitEvent, config: InstallerConfig): number {
  switch (event) {
    case "imaged":
      return config.fog.imagingTimeoutSeconds;
    case "host-up":
      return config.pod.bootTimeoutSeconds;
    case "installer-done":
      return config.pod.installTimeoutSeconds;
  }
}

/** The booking's wait for `event` in this run, if it has one. */
export function waitOf(booking: Booking, input: PhaseInput, event: WaitEvent): WaitRecord | null {
  const wait = booking.wait;
  return wait &&
    wait.event === event &&
    wait.phase === input.phase &&
    wait.generation === input.generation
    ? wait
    : null;
}

/**
 * Registers `token` as the run's wait for `event`; null when the run is no longer current, or
 * when the watcher has recorded an outcome for this wait meanwhile (which is answered instead).
 */
export function registerWait(
  input: PhaseInput,
  event: WaitEvent,
  token: string,
  now: Date,
  deadline: Date,
): BookingChange {
  return (current) => {
    if (!isCurrentRun(current, input.phase, input.generation)) return null;
    const previous = waitOf(current, input, event);
    if (previous?.outcome) return null;
    return {
      ...current,
      wait: {
        event,
        phase: input.phase,
        generation: input.generation,
        token,
        since: previous?.since ?? now.toISOString(),
        deadline: previous?.deadline ?? deadline.toISOString(),
        outcome: null,
        answeredAt: null,
      },
    };
  };
}

/**
 * The watcher's finding, written before it answers the token: a successful one also completes
 * the step (`await:<event>`), so a step that waits again returns it at once.
 */
export function recordOutcome(wait: WaitRecord, outcome: WaitOutcome, now: Date): BookingChange {
  const input = { phase: wait.phase, generation: wait.generation };
  return (current) => {
    const live = current.wait;
    if (!live || live.token !== wait.token || live.outcome !== null) return null;
    if (!isCurrentRun(current, wait.phase, wait.generation)) return null;
    const recorded: Booking = { ...current, wait: { ...live, outcome } };
    if (!outcome.ok) return recorded;
    return recordDone(
      { ...input, bookingId: current.id, hostName: current.hostName },
      waitKey(wait.event),
      outcome.result,
      now,
    )(recorded);
  };
}

/** The token was answered (or had gone): the watcher leaves the wait alone from now on. */
export function markAnswered(token: string, now: Date): BookingChange {
  return (current) =>
    current.wait?.token === token && current.wait.answeredAt === null
      ? { ...current, wait: { ...current.wait, answeredAt: now.toISOString() } }
      : null;
}

/**
 * What the watcher already found for this wait, if it has (before a restart, or between this
 * step's read and its write): answered at once, a failure thrown under its own name.
 */
async function answerFound(
  rt: Runtime,
  booking: Booking,
  input: AwaitEventInput,
): Promise<boolean> {
  const done = doneResult(booking, input, waitKey(input.event));
  if (done !== undefined) {
    await rt.engine.sendTaskSuccess(input.taskToken, asObject(done));
    return true;
  }
  const outcome = waitOf(booking, input, input.event)?.outcome;
  if (!outcome) return false;
  if (!outcome.ok) throw new RecordedFailure(outcome.error, outcome.cause);
  await rt.engine.sendTaskSuccess(input.taskToken, outcome.result);
  return true;
}

export async function awaitEvent(
  rt: Runtime,
  input: AwaitEventInput,
): Promise<{ waiting: boolean }> {
  const booking = await loadCurrentBooking(rt, input);
  const { event, taskToken } = input;
  if (await answerFound(rt, booking, input)) return { waiting: false };
  const previous = waitOf(booking, input, event);
  const nothing = nothingToWaitFor(booking, input, event);
  if (nothing) {
    await rt.store.updateBooking(booking.id, recordDone(input, waitKey(event), nothing, rt.now()));
    await rt.engine.sendTaskSuccess(taskToken, nothing);
    return { waiting: false };
  }
  const now = rt.now();
  const config = imagingConfig(rt, booking, input.phase);
  const deadline = new Date(now.getTime() + deadlineSeconds(event, config) * 1000);
  const { changed, item } = await rt.store.updateBooking(
    booking.id,
    registerWait(input, event, taskToken, now, deadline),
  );
  if (!changed) {
    // The watcher found it meanwhile (or the run ended, which stops the execution anyway).
    await answerFound(rt, item, input);
    return { waiting: false };
  }
  if (event === "host-up") {
    await updateBookingProgress(
      rt,
      booking.id,
      noteProgress(input.phase, input.generation, "waiting for the host to boot"),
    );
  }
  rt.logger.info(
    { bookingId: booking.id, phase: input.phase, event, deadline: previous?.deadline ?? deadline },
    "waiting for the watcher",
  );
  return { waiting: true };
}

/** The installer step started nothing (no installer booked): there is nothing to wait for. */
function nothingToWaitFor(
  booking: Booking,
  input: PhaseInput,
  event: WaitEvent,
): JsonObject | null {
  if (event !== "installer-done") return null;
  const started = doneResult(booking, input, "startInstaller");
  if (
    started &&
    typeof started === "object" &&
    !Array.isArray(started) &&
    started.running === false
  ) {
    return { exitCode: null, ran: false };
  }
  return null;
}

function asObject(value: unknown): JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as JsonObject)
    : { value: value as JsonObject[string] };
}
