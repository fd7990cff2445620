/**
 * What one run of a phase (provision or release, under its generation) has done, kept on the
 * booking so that a step run again — a retry, a restarted listener, a redriven execution — finds
 * its own record and returns it instead of acting again; and the world event the run waits for,
 * with the task token that completes its workflow step.
 */
import type { Phase } from "./booking";

/** A JSON value: what steps return and what the workflow history holds. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * One step of a run. `intent` is written before a side effect whose outcome a crash could leave
 * unknown (a FOG task, a reboot, an installer launch, a password); `done` with `result` once the
 * step has finished. A step that finds `intent` without `done` looks at the world before acting.
 */
export interface StepRecord {
  done: boolean;
  /** ISO time of the last write. */
  at: string;
  result: JsonValue;
  intent: JsonObject;
}

export interface RunRecord {
  phase: Phase;
  generation: number;
  /** By step key (the step function's name, with the stage for status notes). */
  steps: Record<string, StepRecord>;
}

/** The world events a run waits for, one watcher looking at all of them. */
export const WAIT_EVENTS = ["imaged", "host-up", "installer-done"] as const;
export type WaitEvent = (typeof WAIT_EVENTS)[number];

/** What the watcher found, recorded before it completes (or fails) the task token. */
export type WaitOutcome =
  | { ok: true; result: JsonObject }
  | { ok: false; error: string; cause: string };

export interface WaitRecord {
  event: WaitEvent;
  phase: Phase;
  generation: number;
  /** The task token of the waiting workflow step (Step Functions' or the local engine's). */
  token: string;
  /** ISO time of the first registration of this wait in its run (kept when it re-registers). */
  since: string;
  /** ISO time after which the watcher fails the wait (imaging_timeout, boot_timeout, …). */
  deadline: string;
  /** Set once the event came (or the deadline passed); the token is then completed with it. */
  outcome: WaitOutcome | null;
  /** ISO time the token was answered with the outcome (accepted, or gone meanwhile). */
  answeredAt: string | null;
}

/** Runs are ordered: a release run comes after any provision run, a later generation after an earlier one. */
export function runOrder(phase: Phase, generation: number): number {
  return (phase === "release" ? 1_000_000 : 0) + generation;
}
