/**
 * The virtual pod on the host, through the relay: built after the host answers SSH (networks,
 * ISO, disks, domains, the installer's master started, MACs read back), removed at release before
 * the host is reimaged. Each runs once per run: run again, it answers what it recorded.
 */

import type { JsonObject } from "../domain/run";
import { installerPlugin } from "../installers/registry";
import { macsBySource } from "../pod/domiflist";
import { buildPlan, removalPlan } from "../pod/plan";
import type { PhaseInput } from "../ports/engine";
import type { Runtime } from "../ports/runtime";
import { once } from "./checkpoints";
import { imagingConfig, requireCurrentRun } from "./current-run";
import { onHost, runLogged } from "./host-access";
import { updateBookingProgress } from "./progress";
import { noteProgress, observeDeployed } from "./transitions";

export interface PodSummary extends JsonObject {
  /** Domain name → (network or bridge → MAC). */
  macs: Record<string, Record<string, string>>;
  master: string | null;
}

export async function buildPod(rt: Runtime, input: PhaseInput): Promise<PodSummary> {
  return once(rt, input, "buildPod", async (stored) => {
    const booking = requireCurrentRun(stored, input);
    const config = imagingConfig(rt, booking, input.phase);
    // The plugin is looked up first: an unknown installer fails before the host is touched.
    const plugin = installerPlugin(booking.installer);
    const master = plugin.masterDomain(config.hypervisor.vms);
    const plan = buildPlan(config, {
      masterDomain: master,
      diskSizeGB: config.pod.diskSizeGB,
      connectUri: config.pod.libvirtUri,
    });
    await updateBookingProgress(
      rt,
      booking.id,
      noteProgress(input.phase, input.generation, "building the virtual pod"),
    );
    const log = rt.logger.child({ bookingId: booking.id, step: "BuildPod" });
    const macs: PodSummary["macs"] = {};
    await onHost(rt, input.hostName, async (host) => {
      for (const command of plan) {
        const result = await runLogged(host, command, log);
        if (command.argv.includes("domiflist")) {
          const domain = command.argv[command.argv.length - 1]!;
          macs[domain] = macsBySource(result.stdout);
        }
      }
    });
    rt.logger.info({ bookingId: booking.id, macs, master }, "virtual pod built");
    return { macs, master };
  });
}

export async function removePod(rt: Runtime, input: PhaseInput): Promise<{ removed: number }> {
  return once(rt, input, "removePod", async (stored) => {
    const booking = requireCurrentRun(stored, input);
    // The pod was built from the booked installer's files: remove what those define.
    const config = imagingConfig(rt, booking, "provision");
    const plan = removalPlan(config, { connectUri: config.pod.libvirtUri });
    await updateBookingProgress(
      rt,
      booking.id,
      noteProgress(input.phase, input.generation, "removing the virtual pod"),
    );
    // The first login of a release: a deploy FOG completed since the host's key was recorded
    // (an earlier release interrupted after its imaging, a reimage outside LaaS) has made that
    // key stale — it is forgotten, not required.
    const fogHost = await rt
      .imagerFor(imagingConfig(rt, booking, input.phase).fog)
      .findHost(input.hostName);
    await rt.store.updateHost(input.hostName, observeDeployed(fogHost.deployed));
    const log = rt.logger.child({ bookingId: booking.id, step: "RemovePod" });
    // A pod is built only on a host that was reached: one never reached (no known address) has
    // none — that is no failure, and the clean imaging that follows clears the disk anyway.
    if (!(await rt.store.getHost(input.hostName))?.address) {
      log.info({ host: input.hostName }, "no virtual pod to remove: the host was never reached");
      return { removed: 0 };
    }
    await onHost(rt, input.hostName, async (host) => {
      for (const command of plan) await runLogged(host, command, log);
    });
    return { removed: plan.length };
  });
}
