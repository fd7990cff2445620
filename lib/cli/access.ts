/**
 * `laas sweep` and `laas handover`: the directory sweep on demand, and sending a hand-over whose
 * delivery gave up (its credentials stay sealed on the booking until it is delivered or the
 * booking ends).
 */
import type { StepHandler } from "../adapters/local/local-engine";
import { openEmbeddedRuntime } from "../app/embedded";
import { deliverHandover } from "../lifecycle/access";
import { sweepVpnUsers } from "../lifecycle/sweep";
import { silentLogger } from "../log";
import { loadAnyConfig } from "./config";
import { EXIT, Refusal } from "./exit";

export async function sweepCommand(
  options: { config: string },
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
): Promise<number> {
  const { lab } = await loadAnyConfig(options.config);
  if (!lab.handover?.vpn)
    throw new Refusal(`${lab.file}: no handover section with vpn: nothing to sweep`);
  const embedded = await openEmbeddedRuntime(lab, {
    handlers,
    listen: false,
    logger: silentLogger,
  });
  try {
    const report = await sweepVpnUsers(embedded.runtime);
    for (const dn of report.removed) out(`removed ${dn}`);
    for (const { dn, outcome } of report.declined) out(`left ${dn} (${outcome})`);
    out(`sweep: ${report.removed.length} removed, ${report.kept} in use`);
    return EXIT.ok;
  } finally {
    await embedded.close();
  }
}

export async function handoverCommand(
  options: { config: string; bookingId: string },
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
): Promise<number> {
  const { lab } = await loadAnyConfig(options.config);
  const handover = lab.handover;
  if (!handover) throw new Refusal(`${lab.file}: no handover section`);
  const embedded = await openEmbeddedRuntime(lab, {
    handlers,
    listen: false,
    logger: silentLogger,
  });
  try {
    const { runtime } = embedded;
    const booking = await runtime.store.getBooking(options.bookingId);
    if (!booking) throw new Refusal(`no booking ${options.bookingId}`);
    if (booking.state !== "ready") {
      throw new Refusal(
        `booking ${booking.id} is ${booking.state}: only a ready booking is handed over`,
      );
    }
    if (booking.access?.handover === "delivered") {
      throw new Refusal(`booking ${booking.id}: the hand-over was delivered already`);
    }
    if (!booking.access?.sealedCredentials) {
      throw new Refusal(`booking ${booking.id}: no credentials are waiting for delivery`);
    }
    // A handover section always has its mailer (lib/app/build.ts).
    const mailer = runtime.mailer;
    if (!mailer) throw new Error("no mailer for the handover section");
    const recipients = await deliverHandover(runtime, booking, handover, mailer);
    out(`booking ${booking.id}: hand-over sent to ${recipients.join(", ")}`);
    return EXIT.ok;
  } finally {
    await embedded.close();
  }
}
