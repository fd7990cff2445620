/**
 * `laas reset-db`: fill the host table from FOG and/or empty the booking table, as the original
 * resetDatabase.py — but it never wipes what is there without --force, and never, --force or
 * not, while the tables are in use: a listener running (its workflows and polls write them), a
 * host claimed, in use or being cleaned, or a booking scheduled to start or in a phase. Wiping
 * then would free a host a booking uses, or leave a host held by a booking that is gone.
 */
import type { StepHandler } from "../adapters/local/local-engine";
import { openEmbeddedRuntime } from "../app/embedded";
import { inventoryHostByName } from "../config/load";
import { type Booking, isActive, isManual } from "../domain/booking";
import { type Host, newHost } from "../domain/host";
import { silentLogger } from "../log";
import { loadAnyConfig } from "./config";
import { EXIT, Refusal } from "./exit";

export interface ResetDbOptions {
  config: string;
  hosts: boolean;
  bookings: boolean;
  force: boolean;
}

export async function resetDbCommand(
  options: ResetDbOptions,
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
): Promise<number> {
  const { lab } = await loadAnyConfig(options.config);
  const embedded = await openEmbeddedRuntime(lab, {
    handlers,
    listen: false,
    logger: silentLogger,
  });
  const { store } = embedded.runtime;
  try {
    if (!embedded.storeHandle.owner) {
      throw new Refusal(
        `a listener runs on ${lab.database} (pid ${embedded.storeHandle.runner.pid}): its polls ` +
          "and workflows use the tables; stop it first with `laas stop` (--force does not " +
          "override this)",
      );
    }
    refuseWhileInUse(await store.listHosts(), await store.listBookings());
    // Look before touching anything, so a refusal leaves both tables as they were.
    const existingHosts = options.hosts ? await store.listHosts() : [];
    const existingBookings = options.bookings ? await store.listBookings() : [];
    if (!options.force && (existingHosts.length > 0 || existingBookings.length > 0)) {
      const what = [
        existingHosts.length ? `${existingHosts.length} host(s)` : "",
        existingBookings.length ? `${existingBookings.length} booking(s)` : "",
      ].filter(Boolean);
      throw new Refusal(`the store holds ${what.join(" and ")}; add --force to replace them`);
    }
    // Fetch from FOG first: if FOG is unreachable the old host table stays.
    const fogHosts = options.hosts
      ? await embedded.runtime.imagerFor(lab.cleanConfig.fog).listHosts()
      : [];
    if (options.bookings) {
      for (const booking of existingBookings) await store.deleteBooking(booking.id);
      out(`bookings: ${existingBookings.length} removed`);
    }
    if (options.hosts) {
      for (const host of existingHosts) {
        if (host.state === "quarantined") {
          const why = (host.reason ?? "no reason recorded").split("\n")[0];
          out(`warning: host ${host.name} was quarantined (${why}); it is free again`);
        }
        await store.deleteHost(host.name);
      }
      // FOG compares names without regard to case: an inventory's `pod-caps` is FOG's
      // `Pod-Caps`. The store keeps the inventory's spelling, the one bookings use.
      const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
      const lent = fogHosts.flatMap((fogHost) => {
        const entry = inventoryHostByName(lab.inventory, fogHost.name);
        return entry ? [{ name: entry.name, fogHost }] : [];
      });
      for (const { name, fogHost } of lent) await store.createHost(newHost(name, fogHost));
      const missing = lab.inventory.hosts.filter(
        (h) => !fogHosts.some((f) => sameName(f.name, h.name)),
      );
      out(
        `hosts: ${lent.length} added from FOG (${fogHosts.length - lent.length} not in the inventory skipped)`,
      );
      for (const host of missing)
        out(`warning: inventory host ${host.name} is not registered in FOG`);
    }
    return EXIT.ok;
  } finally {
    await embedded.close();
  }
}

/** Hosts a booking uses and bookings that use (or are about to claim) a host stop any reset. */
function refuseWhileInUse(hosts: Host[], bookings: Booking[]): void {
  const held = hosts.filter((h) => h.state !== "free" && h.state !== "quarantined");
  // A scheduled booking holds nothing yet (poll reads it again from the dashboard): not in use.
  const active = bookings.filter((b) => isActive(b.state));
  if (held.length === 0 && active.length === 0) return;
  const lines: string[] = ["the store is in use; --force does not override this:"];
  for (const host of held) {
    lines.push(
      `  host ${host.name} is ${host.state} (booking ${host.bookingId ?? "unknown"}): wait for ` +
        `that booking to end, or free the host with \`laas host release ${host.name}\``,
    );
  }
  for (const booking of active) {
    lines.push(
      `  booking ${booking.id} is ${booking.state} on ${booking.hostName}: wait for it to end` +
        (isManual(booking.id)
          ? ` (a manual deploy: \`laas host release ${booking.hostName}\` ends it)`
          : ""),
    );
  }
  throw new Refusal(lines.join("\n"));
}
