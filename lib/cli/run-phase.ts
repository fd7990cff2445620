/**
 * Runs one phase of an operator's booking (`laas deploy`, `laas deploy --reset`,
 * `laas host release`) and follows it to its end. With a listener running, the listener runs the
 * workflow (this command hands it over and follows); without one, this process runs it and its
 * watcher.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Driver } from "../app/driver";
import type { EmbeddedRuntime } from "../app/embedded";
import { type Booking, executionName, type Phase } from "../domain/booking";
import { EXIT } from "./exit";
import { followBooking } from "./wait";

export interface PhaseEnd {
  code: number;
  /** The booking as the phase left it. */
  booking: Booking;
  /** The phase's execution. */
  execution: string;
}

export async function runPhase(
  embedded: EmbeddedRuntime,
  booking: Booking,
  phase: Phase,
  out: (line: string) => void,
  options: {
    reportEnd?: boolean;
    /** Takes each new state or progress of the booking instead of a printed line (a live line). */
    show?: (booking: Booking) => void;
  } = {},
): Promise<PhaseEnd> {
  const { runtime, engine } = embedded;
  const hostName = booking.hostName;
  const generation =
    phase === "provision" ? booking.provisionGeneration : booking.releaseGeneration;
  const name = executionName(booking.id, phase, generation);
  await engine.start(phase, name, { bookingId: booking.id, hostName, phase, generation });
  const runner = embedded.storeHandle.runner.pid;
  out(
    engine.runsHere
      ? `${phase} of ${hostName} started as ${name}`
      : `${phase} of ${hostName} handed to the running listener (pid ${runner}) as ${name}`,
  );
  const running = async () => (await engine.status(name)) === "RUNNING";
  const following = followBooking(
    runtime.store,
    booking.id,
    (b) => b.state === "ready" || b.state === "released" || b.state === "failed",
    out,
    running,
    options.show,
  );
  // Without a listener this process is the one that moves the workflow on — to its end (the
  // steps after `ready`: status note, hand-over), so that nothing is left for another process.
  const stopDriving = new AbortController();
  const driving = engine.runsHere
    ? new Driver(embedded, { adopt: false }).until(
        async () => !(await running()),
        stopDriving.signal,
      )
    : Promise.resolve();
  let final: Booking;
  try {
    final = await following;
    await driving;
  } finally {
    stopDriving.abort();
    await driving.catch(() => undefined);
  }
  const end = { booking: final, execution: name };
  const report = options.reportEnd === false ? () => undefined : out;
  if (final.state === "failed") {
    report(`${hostName}: ${phase} failed: ${final.failure ?? "unknown reason"}`);
    return { ...end, code: EXIT.failed };
  }
  report(`${hostName}: ${final.state}`);
  return { ...end, code: EXIT.ok };
}

/** Waits until the execution has ended (a listener may still run its last steps). */
export async function executionEnded(embedded: EmbeddedRuntime, name: string): Promise<void> {
  while ((await embedded.engine.status(name)) === "RUNNING") await sleep(500);
}
