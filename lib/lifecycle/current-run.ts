/**
 * Which run of a booking a step belongs to, and which installer config serves it. A step of a
 * run that is no longer current (the booking was released, cancelled or failed meanwhile) stops
 * with SupersededError instead of touching anything.
 */

import { installerConfigFor } from "../config/load";
import type { InstallerConfig } from "../config/types";
import type { Booking, Phase } from "../domain/booking";
import { SupersededError } from "../errors";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { readBooking } from "./checkpoints";
import { isCurrentRun } from "./transitions";

export function requireCurrentRun(booking: Booking, input: PhaseInput): Booking {
  if (!isCurrentRun(booking, input.phase, input.generation)) {
    throw new SupersededError(
      `booking ${booking.id} is ${booking.state}: ${input.phase} run ${input.generation} is no longer current`,
    );
  }
  return booking;
}

export async function loadCurrentBooking(rt: Runtime, input: PhaseInput): Promise<Booking> {
  return requireCurrentRun(await readBooking(rt, input.bookingId), input);
}

/** Provisioning writes the booked installer's image; release writes the clean image. */
export function imagingConfig(rt: Runtime, booking: Booking, phase: Phase): InstallerConfig {
  return phase === "provision"
    ? installerConfigFor(rt.config, booking.installer)
    : rt.config.cleanConfig;
}
