/**
 * `laas deploy --host NAME [--reset]`: one host now, as the original deploy.py. It runs the same
 * provision (or, with --reset, release) workflow a booking would, for a booking of the operator's
 * own (id `manual-…`, which poll leaves alone), and follows it to its end (run-phase.ts). Deploy
 * takes only a free host; --reset is `laas host release` (release.ts).
 */

import { join } from "node:path";
import type { StepHandler } from "../adapters/local/local-engine";
import { type EmbeddedRuntime, openEmbeddedRuntime } from "../app/embedded";
import type { Runtime } from "../app/runtime";
import type { PharosConfig } from "../config/types";
import { type Booking, isManual } from "../domain/booking";
import { type Host, newHost } from "../domain/host";
import { beginCleaning, beginProvisioning, claimHost, holds } from "../lifecycle/transitions";
import { createLogger, LOG_FILE, type Logger } from "../log";
import { loadAnyConfig } from "./config";
import { Refusal } from "./exit";
import type { LiveView } from "./live-view";
import { manualBooking, releaseHost } from "./release";
import { executionEnded, type PhaseEnd, runPhase } from "./run-phase";
import { openTerminal, type Terminal, terminalMode } from "./terminal";

export interface DeployOptions {
  config: string;
  host: string;
  reset: boolean;
  /** The log's JSON lines on stdout (the command's own lines on stderr). */
  json?: boolean;
}

/**
 * The terminal shows the booking's live line (its state, progress, FOG's percent), or a line per
 * change when stdout is not a terminal, and the warnings of the work this process does (a relay
 * that does not answer, tried again) either way; the log file gets every event (terminal.ts).
 */
export async function deployCommand(
  options: DeployOptions,
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
  err: (line: string) => void = out,
): Promise<number> {
  const { lab, installer } = await loadAnyConfig(options.config);
  const terminal = openTerminal(terminalMode(options.json === true), {
    out,
    err,
    plainLevel: "warn",
    eventsMoveLines: false,
  });
  const logger = createLogger({
    destination: join(lab.loggingDir, LOG_FILE),
    streams: terminal.streams,
  });
  try {
    return await deployWith(lab, installer?.installer ?? null, options, handlers, logger, terminal);
  } finally {
    terminal.close();
  }
}

async function deployWith(
  lab: PharosConfig,
  installer: string | null,
  options: DeployOptions,
  handlers: Record<string, StepHandler>,
  logger: Logger,
  { say: out, view }: Pick<Terminal, "say" | "view">,
): Promise<number> {
  // On a terminal the booking's changes move its live line rather than print lines.
  const show = view ? (booking: Booking) => showOn(view, booking) : undefined;
  const embedded = await openEmbeddedRuntime(lab, { handlers, listen: false, logger });
  try {
    const host = await ensureHost(embedded.runtime, options.host);
    if (options.reset) return await releaseHost(embedded, host, out, show);
    const booking = manualBooking(embedded, options.host, installer);
    const { changed, item } = await embedded.runtime.store.updateHost(
      options.host,
      claimHost(booking.id, embedded.runtime.now()),
    );
    if (!changed && !holds(item, booking.id)) throw await notFree(embedded.runtime, item);
    await embedded.runtime.store.createBooking(booking);
    const started = await embedded.runtime.store.updateBooking(booking.id, beginProvisioning);
    const provision = await runPhase(
      embedded,
      started.item,
      "provision",
      out,
      show ? { show } : {},
    );
    if (provision.booking.cleanup !== null) {
      await cleanAfterFailure(embedded, provision, out, show);
    }
    return provision.code;
  } finally {
    await embedded.close();
  }
}

/** A booking's state on its live line; the line goes once its phase has ended. */
function showOn(view: LiveView, booking: Booking): void {
  const stage = `${booking.state}${booking.progress ? `: ${booking.progress}` : ""}`;
  if (booking.state === "ready" || booking.state === "released" || booking.state === "failed") {
    view.end(booking.id);
    return;
  }
  view.show(booking.id, { host: booking.hostName, stage });
}

/**
 * A failed provision left the host dirty: it is cleaned now (pod removed, clean image written,
 * host freed), as poll cleans a dashboard booking's host — poll leaves manual bookings alone.
 * The booking stays failed, and so does the command; a host whose cleaning fails too may be
 * quarantined (quarantine_after), until `laas host release`.
 */
async function cleanAfterFailure(
  embedded: EmbeddedRuntime,
  failed: PhaseEnd,
  out: (line: string) => void,
  show: ((booking: Booking) => void) | undefined,
): Promise<void> {
  let last = failed;
  // A failed cleaning leaves the host to clean again until its streak quarantines it: bounded.
  for (let round = 0; round <= embedded.runtime.config.quarantineAfter; round += 1) {
    if (last.booking.cleanup === null) break;
    // The failed run's last steps (failure note, operators' mail) end before a cleaning starts.
    await executionEnded(embedded, last.execution);
    const { changed, item } = await embedded.runtime.store.updateBooking(
      last.booking.id,
      beginCleaning,
    );
    if (!changed) break;
    out(`${item.hostName}: cleaning the host after the failure`);
    // The booking ends failed whatever the cleaning does: the host says how it went.
    last = await runPhase(embedded, item, "release", out, {
      reportEnd: false,
      ...(show ? { show } : {}),
    });
  }
  const host = await embedded.runtime.store.getHost(failed.booking.hostName);
  if (!host) return;
  if (host.state === "free") out(`${host.name}: cleaned and free`);
  else out(`${host.name}: ${host.state}${host.reason ? ` (${host.reason.split("\n")[0]})` : ""}`);
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

/**
 * Deploy takes only a free host: one a booking holds is that booking's (a manual one's included,
 * until it is released), and a quarantined one is out of service until an operator releases it.
 */
async function notFree(rt: Runtime, host: Host): Promise<Refusal> {
  const name = host.name;
  if (host.state === "quarantined") {
    const why = (host.reason ?? "no reason recorded").split("\n")[0];
    return new Refusal(
      `host ${name} is quarantined (${why}); it is out of service until an operator releases ` +
        `it: \`laas host release ${name}\` reimages it clean and frees it — then deploy again`,
    );
  }
  const holder: Booking | null = host.bookingId ? await rt.store.getBooking(host.bookingId) : null;
  const held = `host ${name} is ${host.state} (booking ${host.bookingId ?? "unknown"})`;
  if (holder && !isManual(holder.id)) {
    return new Refusal(
      `${held}; deploy takes only a free host: wait for booking ${holder.id} (${holder.state}) to end`,
    );
  }
  return new Refusal(
    `${held}; deploy takes only a free host: free it first with \`laas host release ${name}\``,
  );
}
