/**
 * The virtual pod on the host, through the relay: built after the host answers SSH (networks,
 * ISO, disks, domains, the installer's master started, MACs read back), removed at release before
 * the host is reimaged.
 */
import type { Runtime } from "../app/runtime";
import { installerPlugin } from "../installers/registry";
import { macsBySource } from "../pod/domiflist";
import { buildPlan, removalPlan } from "../pod/plan";
import type { PhaseInput } from "../ports/engine";
import type { HostLogin, HostSession } from "../ports/relay";
import { bookingSink, hostLogin, requireRelay } from "./host-access";
import { imagingConfig, loadCurrentBooking } from "./imaging";
import { HostUnreachableError } from "./reach";
import { noteProgress } from "./transitions";

export interface PodSummary {
  /** Domain name → (network or bridge → MAC). */
  macs: Record<string, Record<string, string>>;
  master: string | null;
}

export async function buildPod(rt: Runtime, input: PhaseInput): Promise<PodSummary> {
  const booking = await loadCurrentBooking(rt, input);
  const config = imagingConfig(rt, booking, input.phase);
  // The plugin is looked up first: an unknown installer fails before the host is touched.
  const plugin = installerPlugin(booking.installer);
  const master = plugin.masterDomain(config.hypervisor.vms);
  const plan = buildPlan(config, {
    masterDomain: master,
    diskSizeGB: config.pod.diskSizeGB,
    connectUri: config.pod.libvirtUri,
  });
  await rt.store.updateBooking(
    booking.id,
    noteProgress(input.phase, input.generation, "building the virtual pod"),
  );
  const sink = bookingSink(rt.logger, booking.id, "BuildPod");
  const macs: PodSummary["macs"] = {};
  await onHost(rt, input.hostName, async (host) => {
    for (const command of plan) {
      const result = await host.run(command, sink);
      if (command.argv.includes("domiflist")) {
        const domain = command.argv[command.argv.length - 1]!;
        macs[domain] = macsBySource(result.stdout);
      }
    }
  });
  rt.logger.info({ bookingId: booking.id, macs, master }, "virtual pod built");
  return { macs, master };
}

export async function removePod(rt: Runtime, input: PhaseInput): Promise<{ removed: number }> {
  const booking = await loadCurrentBooking(rt, input);
  // The pod was built from the booked installer's files: remove what those define.
  const config = imagingConfig(rt, booking, "provision");
  const plan = removalPlan(config, { connectUri: config.pod.libvirtUri });
  await rt.store.updateBooking(
    booking.id,
    noteProgress(input.phase, input.generation, "removing the virtual pod"),
  );
  const sink = bookingSink(rt.logger, booking.id, "RemovePod");
  await onHost(rt, input.hostName, async (host) => {
    for (const command of plan) await host.run(command, sink);
  });
  return { removed: plan.length };
}

/**
 * Runs `work` in a login on the host, through the relay, at the address it answered on. The
 * login is passed on for steps whose commands depend on who logged in (sudo or not).
 */
export async function onHost<T>(
  rt: Runtime,
  hostName: string,
  work: (host: HostSession, login: HostLogin) => Promise<T>,
): Promise<T> {
  const host = await rt.store.getHost(hostName);
  if (!host?.address) {
    throw new HostUnreachableError(`${hostName} has no known address: it was never reached`);
  }
  const login = hostLogin(rt, host, host.address);
  return requireRelay(rt).session(async (session) => work(await session.host(login), login));
}
