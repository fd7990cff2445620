/**
 * `laas deploy --host NAME [--reset]`: one host now, as the original deploy.py. It runs the same
 * provision (or, with --reset, release) workflow a booking would, for a booking of the operator's
 * own (id `manual-…`, which poll leaves alone), and follows it to its end. With a listener
 * running, the listener runs the workflow (this command hands it over and follows); without one,
 * this process runs it and its watcher.
 */

import { join } from "node:path";
import type { LocalEngine, StepHandler } from "../adapters/local/local-engine";
import { Driver } from "../app/driver";
import { openEmbeddedRuntime } from "../app/embedded";
import type { Runtime } from "../app/runtime";
import {
  type Booking,
  executionName,
  isManual,
  manualBookingId,
  type Phase,
} from "../domain/booking";
import { type Host, newHost } from "../domain/host";
import { NotFoundError } from "../errors";
import {
  beginProvisioning,
  beginReleasing,
  claimHost,
  holds,
  hostCleaning,
  newBooking,
} from "../lifecycle/transitions";
import { createLogger } from "../log";
import { loadAnyConfig } from "./config";
import { EXIT, Refusal } from "./exit";
import { followBooking } from "./wait";

export interface DeployOptions {
  config: string;
  host: string;
  reset: boolean;
}

export async function deployCommand(
  options: DeployOptions,
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
): Promise<number> {
  const { lab, installer } = await loadAnyConfig(options.config);
  const logger = createLogger({ destination: join(lab.loggingDir, "laas.log") });
  const embedded = await openEmbeddedRuntime(lab, { handlers, listen: false, logger });
  const { runtime, engine } = embedded;
  try {
    await ensureHost(runtime, options.host);
    const booking = options.reset
      ? await prepareReset(runtime, engine, options.host)
      : await prepareDeploy(runtime, options.host, installer?.installer ?? null);
    const phase: Phase = options.reset ? "release" : "provision";
    const generation =
      phase === "provision" ? booking.provisionGeneration : booking.releaseGeneration;
    const name = executionName(booking.id, phase, generation);
    await engine.start(phase, name, {
      bookingId: booking.id,
      hostName: options.host,
      phase,
      generation,
    });
    const runner = embedded.storeHandle.runner.pid;
    out(
      embedded.engine.runsHere
        ? `${phase} of ${options.host} started as ${name}`
        : `${phase} of ${options.host} handed to the running listener (pid ${runner}) as ${name}`,
    );
    const running = async () => (await engine.status(name)) === "RUNNING";
    const following = followBooking(
      runtime.store,
      booking.id,
      (b) => b.state === "ready" || b.state === "released" || b.state === "failed",
      out,
      running,
    );
    // Without a listener this process is the one that moves the workflow on — to its end (the
    // steps after `ready`: status note, hand-over), so that nothing is left for another process.
    const stopDriving = new AbortController();
    const driving = embedded.engine.runsHere
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
    if (final.state === "failed") {
      out(`${options.host}: ${phase} failed: ${final.failure ?? "unknown reason"}`);
      return EXIT.failed;
    }
    out(`${options.host}: ${final.state}`);
    return EXIT.ok;
  } finally {
    await embedded.close();
  }
}

/** A host FOG knows but the store does not yet is added, as reset-db --host would. */
async function ensureHost(rt: Runtime, name: string): Promise<Host> {
  const existing = await rt.store.getHost(name);
  if (existing) return existing;
  const fogHost = await rt.imagerFor(rt.config.cleanConfig.fog).findHost(name);
  const host = newHost(name, fogHost);
  await rt.store.createHost(host);
  return (await rt.store.getHost(name)) ?? host;
}

function manualBooking(rt: Runtime, hostName: string, installer: string | null): Booking {
  const now = rt.now();
  return newBooking(
    {
      id: manualBookingId(hostName, now),
      resourceId: "",
      hostName,
      start: now,
      // Manual bookings have no end: they last until `laas deploy --reset`.
      end: new Date("9999-12-31T23:59:59.000Z"),
      installer,
      scenario: null,
      purpose: "laas deploy",
      user: null,
    },
    now,
  );
}

async function prepareDeploy(
  rt: Runtime,
  hostName: string,
  installer: string | null,
): Promise<Booking> {
  const booking = manualBooking(rt, hostName, installer);
  const { changed, item } = await rt.store.updateHost(hostName, claimHost(booking.id));
  if (!changed && !holds(item, booking.id)) {
    throw new Refusal(
      `host ${hostName} is ${item.state}${item.bookingId ? ` (booking ${item.bookingId})` : ""}; ` +
        "free it first with `laas deploy --reset`",
    );
  }
  await rt.store.createBooking(booking);
  const started = await rt.store.updateBooking(booking.id, beginProvisioning);
  return started.item;
}

/**
 * Reset takes the host back from whatever holds it — except a booking that is still active, which
 * its own release will clean — and reimages it clean. A quarantined host is reset this way too.
 */
async function prepareReset(rt: Runtime, engine: LocalEngine, hostName: string): Promise<Booking> {
  const host = await rt.store.getHost(hostName);
  if (!host) throw new NotFoundError(`host ${hostName} is not in the store`);
  if (host.bookingId && host.state !== "quarantined") {
    const holder = await rt.store.getBooking(host.bookingId);
    if (holder && holder.state !== "ready" && !isManual(holder.id)) {
      throw new Refusal(`host ${hostName} is held by booking ${holder.id} (${holder.state})`);
    }
    if (holder && isManual(holder.id) && holder.state !== "ready") {
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
      await engine.stop(name, "interrupted; host reset by the operator");
      await rt.store.updateBooking(holder.id, (b) =>
        b.state === "provisioning" || b.state === "releasing"
          ? { ...b, state: "failed", failure: "interrupted; host reset by the operator" }
          : null,
      );
    }
    if (holder && holder.state === "ready") {
      const { item } = await rt.store.updateBooking(holder.id, beginReleasing);
      await rt.store.updateHost(hostName, hostCleaning(holder.id));
      return item;
    }
  }
  const booking: Booking = { ...manualBooking(rt, hostName, null), state: "ready" };
  await rt.store.createBooking(booking);
  // The operator takes the host over: free, quarantined or held by a finished booking.
  await rt.store.updateHost(hostName, (h) => ({
    ...h,
    state: "cleaning",
    bookingId: booking.id,
    reason: null,
  }));
  const { item } = await rt.store.updateBooking(booking.id, beginReleasing);
  return item;
}
