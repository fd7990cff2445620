/**
 * The operator's release of a host, shared by `laas host release` and `laas deploy --reset`: the
 * host is reimaged with the clean image through the release workflow and returned to the free
 * pool, whatever key it shows (the recorded one is forgotten first) and whatever its failure
 * streak (cleared).
 *
 * Who holds the host decides how:
 * - a booking in a phase (scheduled, provisioning, releasing) owns it: refused — its workflow
 *   ends it, and a dashboard booking's release cleans the host. A manual deploy in a phase that
 *   no process runs any more (an interrupted `laas deploy`) is ended and taken over;
 * - a ready booking is released: its own release (the booking ends now);
 * - free, quarantined, or held by a booking that is over: an operator's booking (`manual-…`)
 *   takes the host over, once no workflow runs on it.
 */
import { isRunning } from "../adapters/local/process-identity";
import type { EmbeddedRuntime } from "../app/embedded";
import {
  type Booking,
  type BookingState,
  executionName,
  isActive,
  isManual,
  manualBookingId,
  OPEN_END,
  type Phase,
} from "../domain/booking";
import type { Host } from "../domain/host";
import { takeOverForRelease } from "../lifecycle/host-operations";
import { beginReleasing, newBooking } from "../lifecycle/transitions";
import { Refusal } from "./exit";
import { runPhase } from "./run-phase";

const INTERRUPTED = "interrupted; host released by the operator";

/** Releases `host` (as read from the store) and follows the release to its end. */
export async function releaseHost(
  embedded: EmbeddedRuntime,
  host: Host,
  out: (line: string) => void,
  show?: (booking: Booking) => void,
): Promise<number> {
  const booking = await prepareRelease(embedded, host);
  if (host.hostKey) out(`${host.name}: recorded host key ${host.hostKey} forgotten`);
  if (host.failures > 0) out(`${host.name}: failure streak of ${host.failures} cleared`);
  return (await runPhase(embedded, booking, "release", out, show ? { show } : {})).code;
}

/** A booking that owns its host: scheduled (about to provision) or in a phase, or ready. */
export function holdsItsHost(state: BookingState): boolean {
  return state === "scheduled" || isActive(state);
}

/** A manual booking as `laas deploy` makes one: the operator's own, which poll leaves alone. */
export function manualBooking(
  embedded: EmbeddedRuntime,
  hostName: string,
  installer: string | null,
): Booking {
  const now = embedded.runtime.now();
  return newBooking(
    {
      id: manualBookingId(hostName, now),
      resourceId: "",
      hostName,
      start: now,
      // Manual bookings have no end: they last until `laas host release` (or deploy --reset).
      end: new Date(OPEN_END),
      installer,
      scenario: null,
      purpose: "laas deploy",
      user: null,
    },
    now,
  );
}

async function prepareRelease(embedded: EmbeddedRuntime, host: Host): Promise<Booking> {
  const { runtime: rt, engine } = embedded;
  const hostName = host.name;
  const seen = { state: host.state, bookingId: host.bookingId };
  const holder =
    host.bookingId && host.state !== "free" ? await rt.store.getBooking(host.bookingId) : null;
  // A quarantined host is out of service whatever its last booking says: it is taken over.
  if (holder && host.state !== "quarantined" && holdsItsHost(holder.state)) {
    if (holder.state === "ready") {
      // Its own release: the booking ends now, its pod and access are taken back.
      const taken = await rt.store.updateHost(
        hostName,
        takeOverForRelease(holder.id, seen, rt.now()),
      );
      if (!taken.changed) throw changedMeanwhile(taken.item);
      const { changed, item } = await rt.store.updateBooking(holder.id, beginReleasing);
      if (!changed) {
        throw new Refusal(
          `booking ${holder.id} on ${hostName} became ${item.state} meanwhile: its own workflow ` +
            `goes on; see \`laas host show ${hostName}\``,
        );
      }
      return item;
    }
    if (!isManual(holder.id)) {
      throw new Refusal(
        `host ${hostName} is held by booking ${holder.id}, which is ${holder.state}: that ` +
          "booking's workflow owns the host (a dashboard booking's release cleans it); wait for " +
          `it to end — \`laas host show ${hostName}\``,
      );
    }
    if (holder.state === "provisioning" || holder.state === "releasing") {
      const phase: Phase = holder.state === "releasing" ? "release" : "provision";
      const generation =
        phase === "provision" ? holder.provisionGeneration : holder.releaseGeneration;
      const name = executionName(holder.id, phase, generation);
      // Still being run (by the listener, or a `laas deploy` going on): not to be taken over.
      const runner = await engine.runner(name);
      if (runner) {
        throw new Refusal(
          `host ${hostName} is being deployed (booking ${holder.id}, ${phase} running in pid ${runner.pid}); wait for it to end`,
        );
      }
      // A `laas deploy` that was interrupted: its workflow and its booking end here.
      await engine.stop(name, INTERRUPTED);
      await rt.store.updateBooking(holder.id, (b) =>
        b.state === "provisioning" || b.state === "releasing"
          ? { ...b, state: "failed", failure: INTERRUPTED }
          : null,
      );
    }
  }
  if (holder?.state === "failed" && holder.cleanup !== null) {
    // The lab was to clean the host for that failed booking (poll starts the cleaning): the
    // operator's release does it instead, so that two releases never run on the host.
    const { changed, item } = await rt.store.updateBooking(holder.id, (b) =>
      b.state === "failed" && b.cleanup !== null
        ? { ...b, cleanup: null, progress: "failed; host released by the operator" }
        : null,
    );
    if (!changed && item.state !== "failed") {
      throw new Refusal(
        `host ${hostName} is being cleaned after booking ${holder.id} failed (that booking is ` +
          `now ${item.state}); wait for the cleaning to end — \`laas host show ${hostName}\``,
      );
    }
  }
  await endWorkflowsLeftOn(embedded, hostName);
  const booking = manualBooking(embedded, hostName, null);
  // The host first: a booking made first and then refused the host would stay `ready` without
  // one. Should this process die between the two writes, the host is held by a booking that
  // does not exist, which the next release takes over.
  const taken = await rt.store.updateHost(hostName, takeOverForRelease(booking.id, seen, rt.now()));
  if (!taken.changed) throw changedMeanwhile(taken.item);
  await rt.store.createBooking({ ...booking, state: "ready" });
  const { item } = await rt.store.updateBooking(booking.id, beginReleasing);
  return item;
}

/**
 * Workflows still recorded as running on the host that nothing runs any more (their process is
 * gone) are ended, so that no listener resumes one on the host once it is taken over; one that
 * a live process runs is waited for.
 */
async function endWorkflowsLeftOn(embedded: EmbeddedRuntime, hostName: string): Promise<void> {
  const { engine, storeHandle } = embedded;
  const records = await storeHandle.journal.list();
  for (const record of records) {
    if (record.status !== "RUNNING" || record.input.hostName !== hostName) continue;
    if (record.owner && isRunning(record.owner)) {
      throw new Refusal(
        `host ${hostName} has a workflow running (${record.name}, in pid ${record.owner.pid}); ` +
          "wait for it to end",
      );
    }
    await engine.stop(record.name, INTERRUPTED);
  }
}

function changedMeanwhile(now: Host): Refusal {
  return new Refusal(
    `host ${now.name} changed while it was being taken over (it is now ${now.state}` +
      `${now.bookingId ? `, booking ${now.bookingId}` : ""}); nothing was done — run the command again`,
  );
}
