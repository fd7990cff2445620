/**
 * `laas reset-db`: fill the host table from FOG and/or empty the booking table, as the original
 * resetDatabase.py — but it never wipes what is there without --force.
 */
import type { StepHandler } from "../adapters/local/local-engine";
import { openEmbeddedRuntime } from "../app/embedded";
import { inventoryHostByName } from "../config/load";
import { newHost } from "../domain/host";
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
      for (const host of existingHosts) await store.deleteHost(host.name);
      const lent = fogHosts.filter((h) => inventoryHostByName(lab.inventory, h.name));
      for (const fogHost of lent) await store.createHost(newHost(fogHost.name, fogHost));
      const missing = lab.inventory.hosts.filter((h) => !fogHosts.some((f) => f.name === h.name));
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
