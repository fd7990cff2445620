/**
 * The imaging steps of both workflows. StartImaging asks FOG for a deploy and reboots the host
 * into it; CheckImaging looks once at FOG's active tasks and answers. The waiting between looks
 * is the state machine's (a Wait state), never a sleep here.
 */

import type { Runtime } from "../app/runtime";
import { installerConfigFor, inventoryHostByName, powerFor } from "../config/load";
import type { InstallerConfig, InventoryHost } from "../config/types";
import type { Booking, Phase } from "../domain/booking";
import type { Host } from "../domain/host";
import { ConfigError, ImagingError, LaasError, NotFoundError } from "../errors";
import { installerPlugin } from "../installers/registry";
import type { PhaseInput } from "../ports/engine";
import {
  forgetHostKey,
  hostCleaning,
  hostInUse,
  isCurrentRun,
  noteProgress,
  recordHostKey,
} from "./transitions";

/** The run was superseded (booking released, cancelled or handed over): stop quietly. */
export class SupersededError extends LaasError {
  override name = "Superseded";
}

/** What StartImaging hands to CheckImaging, and CheckImaging to itself, through the workflow. */
export interface ImagingState {
  fogHostId: string;
  imageId: number;
  /** ISO time after which CheckImaging gives up and cancels the task. */
  deadline: string;
  /** Seconds the workflow waits between two looks (the Wait state reads it). */
  pollSeconds: number;
  /** FOG's `deployed` before this task: a new value proves the deploy completed. */
  deployedBefore: string | null;
  done: boolean;
  percent: number;
  stage: string;
}

export async function loadCurrentBooking(rt: Runtime, input: PhaseInput): Promise<Booking> {
  const booking = await rt.store.getBooking(input.bookingId);
  if (!booking) throw new NotFoundError(`booking ${input.bookingId} is not in the store`);
  if (!isCurrentRun(booking, input.phase, input.generation)) {
    throw new SupersededError(
      `booking ${booking.id} is ${booking.state}: ${input.phase} run ${input.generation} is no longer current`,
    );
  }
  return booking;
}

/** Provisioning writes the booked installer's image; release writes the clean image. */
export function imagingConfig(rt: Runtime, booking: Booking, phase: Phase): InstallerConfig {
  return phase === "provision"
    ? installerConfigFor(rt.config, booking.installer)
    : rt.config.cleanConfig;
}

export async function startImaging(rt: Runtime, input: PhaseInput): Promise<ImagingState> {
  const booking = await loadCurrentBooking(rt, input);
  const log = rt.logger.child({ bookingId: booking.id, phase: input.phase, host: input.hostName });
  const config = imagingConfig(rt, booking, input.phase);
  // An installer LaaS cannot run fails here, before the host is touched.
  if (input.phase === "provision") installerPlugin(booking.installer);
  const inventoryHost = inventoryHostByName(rt.config.inventory, input.hostName);
  if (!inventoryHost) {
    throw new ConfigError(`host ${input.hostName} is not in ${rt.config.inventory.file}`);
  }
  const imager = rt.imagerFor(config.fog);
  const fogHost = await imager.findHost(input.hostName);
  await rt.store.updateHost(input.hostName, (h) =>
    h.fogId === fogHost.id && h.mac === fogHost.mac
      ? null
      : { ...h, fogId: fogHost.id, mac: fogHost.mac },
  );

  await imager.deploy(fogHost.id, config.fog.imageId, `laas ${input.phase} booking ${booking.id}`);
  log.info({ imageId: config.fog.imageId, fogHostId: fogHost.id }, "deploy task created");

  // From here on the host is being changed: on failure it is quarantined, not simply freed.
  const { item: host } = await rt.store.updateHost(
    input.hostName,
    input.phase === "provision" ? hostInUse(booking.id) : hostCleaning(booking.id),
  );
  await rebootIntoImaging(
    rt,
    inventoryHost,
    host,
    inventoryHost.address ?? host.address ?? fogHost.ip,
  );
  await rt.store.updateBooking(
    booking.id,
    noteProgress(input.phase, input.generation, "imaging: waiting for the host to network-boot"),
  );

  const now = rt.now();
  return {
    fogHostId: fogHost.id,
    imageId: config.fog.imageId,
    deadline: new Date(now.getTime() + config.fog.imagingTimeoutSeconds * 1000).toISOString(),
    pollSeconds: config.fog.pollSeconds,
    deployedBefore: fogHost.deployed,
    done: false,
    percent: 0,
    stage: "Queued",
  };
}

async function rebootIntoImaging(
  rt: Runtime,
  inventoryHost: InventoryHost,
  host: Host,
  address: string | null,
) {
  const hostName = host.name;
  const power = powerFor(rt.config, inventoryHost);
  if (!power) {
    // Without power control the host must network-boot by other means (operator, WoL); the
    // imaging deadline still bounds the wait.
    rt.logger.warn({ host: hostName }, "no power control configured: not rebooting the host");
    return;
  }
  if (!address) {
    throw new ConfigError(
      `host ${hostName} has no address: give one in ${rt.config.inventory.file} or register its IP in FOG`,
    );
  }
  const { hostKey } = await rt.power.reboot({
    hostName,
    address,
    power,
    knownHostKey: host.hostKey,
  });
  await rt.store.updateHost(hostName, recordHostKey(hostKey));
}

export interface CheckImagingInput extends PhaseInput {
  imaging: ImagingState;
}

export async function checkImaging(rt: Runtime, input: CheckImagingInput): Promise<ImagingState> {
  const booking = await loadCurrentBooking(rt, input);
  const config = imagingConfig(rt, booking, input.phase);
  const imager = rt.imagerFor(config.fog);
  const { imaging } = input;
  const progress = await imager.progress(imaging.fogHostId);

  if (progress) {
    if (rt.now().getTime() > Date.parse(imaging.deadline)) {
      await imager.cancel(imaging.fogHostId);
      throw new ImagingError(
        `imaging of ${input.hostName} did not finish by its deadline ${imaging.deadline} ` +
          `(last seen: ${progress.stateName}, ${progress.percent.toFixed(0)}%); the task was cancelled`,
      );
    }
    const stage = progress.stateName;
    await rt.store.updateBooking(
      booking.id,
      noteProgress(
        input.phase,
        input.generation,
        `imaging: ${stage}${progress.stateId === 3 ? ` ${progress.percent.toFixed(0)}%` : ""}`,
      ),
    );
    return { ...imaging, done: false, percent: progress.percent, stage };
  }

  // The task has left FOG's active list: completed, or cancelled by someone. Only a new
  // `deployed` time on the host tells the two apart.
  const fogHost = await imager.findHost(input.hostName);
  if (fogHost.deployed === null || fogHost.deployed === imaging.deployedBefore) {
    throw new ImagingError(
      `the imaging task of ${input.hostName} left FOG's active tasks without a completed deploy (cancelled or failed in FOG)`,
    );
  }
  // The freshly imaged host has new SSH keys: the first one seen from now on is recorded.
  await rt.store.updateHost(input.hostName, forgetHostKey);
  await rt.store.updateBooking(booking.id, noteProgress(input.phase, input.generation, "imaged"));
  return { ...imaging, done: true, percent: 100, stage: "Complete" };
}
