/**
 * Steps that never redo finished work. Each step writes what it did on the booking, under its
 * run (phase and generation), before it returns; run again — a Lambda retry, a listener
 * restarted after `kill -9`, a redriven execution — it finds that record and returns it instead
 * of acting again. A step whose side effect a crash could leave in doubt (a FOG task, a reboot,
 * an installer launch, a password) writes its intent first, and a run that finds the intent
 * without the result looks at the world before acting.
 */

import type { Booking, Phase } from "../domain/booking";
import { type JsonObject, type JsonValue, runOrder, type StepRecord } from "../domain/run";
import { NotFoundError } from "../errors";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";

type BookingChange = (current: Booking) => Booking | null;

/** The record of step `key` in run (phase, generation) of the booking, or null when it has none. */
export function stepRecord(
  booking: Booking,
  phase: Phase,
  generation: number,
  key: string,
): StepRecord | null {
  const run = booking.run;
  if (!run || run.phase !== phase || run.generation !== generation) return null;
  return run.steps[key] ?? null;
}

/** The intent recorded for the step so far (empty when none). */
export function intentOf(booking: Booking, input: PhaseInput, key: string): JsonObject {
  return stepRecord(booking, input.phase, input.generation, key)?.intent ?? {};
}

/**
 * Changes the record of step `key` in run (phase, generation). A booking whose record belongs to
 * a later run (a release begun while a provision step was still at work) is left as it is.
 */
function changeStep(
  phase: Phase,
  generation: number,
  key: string,
  change: (record: StepRecord | null) => StepRecord,
): BookingChange {
  return (current) => {
    const run = current.run;
    const same = run !== null && run.phase === phase && run.generation === generation;
    if (run && !same && runOrder(run.phase, run.generation) > runOrder(phase, generation)) {
      return null;
    }
    const steps = same ? run.steps : {};
    return {
      ...current,
      run: { phase, generation, steps: { ...steps, [key]: change(steps[key] ?? null) } },
    };
  };
}

/** Adds `intent` to the step's record (written before the side effect it announces). */
export function recordIntent(
  input: PhaseInput,
  key: string,
  intent: JsonObject,
  at: Date,
): BookingChange {
  return changeStep(input.phase, input.generation, key, (record) => ({
    done: record?.done ?? false,
    at: at.toISOString(),
    result: record?.result ?? null,
    intent: { ...(record?.intent ?? {}), ...intent },
  }));
}

/** Marks the step done with `result`, what a run of it again returns. */
export function recordDone(
  input: PhaseInput,
  key: string,
  result: JsonValue,
  at: Date,
): BookingChange {
  return changeStep(input.phase, input.generation, key, (record) => ({
    done: true,
    at: at.toISOString(),
    result,
    intent: record?.intent ?? {},
  }));
}

/** Several changes as one write: each sees the result of the one before; null if none applies. */
export function allOf<T>(...changes: ((current: T) => T | null)[]): (current: T) => T | null {
  return (current) => {
    let next: T | null = null;
    for (const change of changes) next = change(next ?? current) ?? next;
    return next;
  };
}

/** The result the step recorded when it finished, or undefined when it has not finished. */
export function doneResult(
  booking: Booking,
  input: PhaseInput,
  key: string,
): JsonValue | undefined {
  const record = stepRecord(booking, input.phase, input.generation, key);
  return record?.done ? record.result : undefined;
}

/** A text field of a recorded result (a step's, or a wait's), or null when it has none. */
export function resultText(result: JsonValue | undefined, name: string): string | null {
  if (typeof result !== "object" || result === null || Array.isArray(result)) return null;
  const found = result[name];
  return typeof found === "string" ? found : null;
}

export async function readBooking(rt: Pick<Runtime, "store">, id: string): Promise<Booking> {
  const booking = await rt.store.getBooking(id);
  if (!booking) throw new NotFoundError(`booking ${id} is not in the store`);
  return booking;
}

/**
 * Runs `work` once per run: the first time it runs and its result is recorded; later it
 * answers the recorded result without running. For steps whose work is one side effect that is
 * safe to redo if a crash comes between it and the record (a removal, a status note).
 */
export async function once<T extends JsonValue>(
  rt: Pick<Runtime, "store" | "now">,
  input: PhaseInput,
  key: string,
  work: (booking: Booking) => Promise<T>,
): Promise<T> {
  const booking = await readBooking(rt, input.bookingId);
  const recorded = doneResult(booking, input, key);
  if (recorded !== undefined) return recorded as T;
  const result = await work(booking);
  await rt.store.updateBooking(booking.id, recordDone(input, key, result, rt.now()));
  return result;
}
