/**
 * StartImaging, in both workflows: find the host in FOG, set the image, create the deploy task,
 * reboot the host into it. The waiting that follows is a callback task the lab's watcher
 * completes (watch-imaging.ts), never a loop here.
 *
 * Run again, the step does not repeat what it did: a deploy task asked for before (its intent is
 * on the booking) is adopted when FOG still has it or has completed it, and a reboot sent before
 * is never sent again in the same run.
 */

import { inventoryHostByName, powerFor } from "../config/load";
import type { InventoryHost } from "../config/types";
import type { Booking } from "../domain/booking";
import type { Host } from "../domain/host";
import type { JsonObject } from "../domain/run";
import {
  ConfigError,
  errorMessage,
  HostBusyError,
  HostUnreachableError,
  TransientError,
  UnreachableError,
} from "../errors";
import { installerPlugin } from "../installers/registry";
import { requireInLabSubnets } from "../lab/subnets";
import type { PhaseInput } from "../ports/engine";
import type { DeployOptions, Imager, ImagerHost } from "../ports/imager";
import type { Runtime } from "../ports/runtime";
import { allOf, doneResult, intentOf, recordDone, recordIntent } from "./checkpoints";
import { imagingConfig, loadCurrentBooking } from "./current-run";
import { identityProof } from "./host-access";
import { updateBookingProgress } from "./progress";
import {
  hostCleaning,
  hostInUse,
  noteProgress,
  observeDeployed,
  recordHostKey,
} from "./transitions";

export const START_IMAGING = "startImaging";

/** What StartImaging hands on (the workflow keeps it as `$.imaging`; RecordFailure uses it). */
export interface ImagingStarted extends JsonObject {
  fogHostId: string;
  imageId: number;
  /** FOG's `deployed` before this task: a new value proves the deploy completed. */
  deployedBefore: string | null;
}

export async function startImaging(rt: Runtime, input: PhaseInput): Promise<ImagingStarted> {
  const booking = await loadCurrentBooking(rt, input);
  const recorded = doneResult(booking, input, START_IMAGING);
  if (recorded !== undefined) return recorded as ImagingStarted;
  const log = rt.logger.child({ bookingId: booking.id, phase: input.phase, host: input.hostName });
  // Only the booking that holds the host images it: an operator may have taken it over
  // (`laas host release`) since this run began.
  const held = await rt.store.getHost(input.hostName);
  if (held && held.bookingId !== booking.id) {
    const holder = held.bookingId ? `booking ${held.bookingId}` : "no booking";
    throw new HostBusyError(
      `host ${input.hostName} is ${held.state}, held by ${holder}, not booking ${booking.id}: not imaging it`,
    );
  }
  const config = imagingConfig(rt, booking, input.phase);
  // An installer LaaS cannot run fails here, before the host is touched.
  if (input.phase === "provision") installerPlugin(booking.installer);
  const inventoryHost = inventoryHostByName(rt.config.inventory, input.hostName);
  if (!inventoryHost) {
    throw new ConfigError(`host ${input.hostName} is not in ${rt.config.inventory.file}`);
  }
  const imager = rt.imagerFor(config.fog);
  const fogHost = await imager.findHost(input.hostName);
  // FOG's word on the host: a key recorded for a system FOG has since replaced is forgotten.
  await rt.store.updateHost(
    input.hostName,
    allOf(
      (h) =>
        h.fogId === fogHost.id && h.mac === fogHost.mac
          ? null
          : { ...h, fogId: fogHost.id, mac: fogHost.mac },
      observeDeployed(fogHost.deployed),
    ),
  );

  const intent = intentOf(booking, input, START_IMAGING);
  const deployedBefore =
    "deployedBefore" in intent ? asDeployed(intent.deployedBefore) : fogHost.deployed;
  // A job's hardware task names its image (pharos.yaml jobs.images); the clean image is the lab's.
  const imageId =
    input.phase === "provision" && booking.job?.fogImageId
      ? booking.job.fogImageId
      : config.fog.imageId;
  const started: ImagingStarted = { fogHostId: fogHost.id, imageId, deployedBefore };
  const taskName = `laas ${input.phase} booking ${booking.id}`;
  const deployOptions: DeployOptions = { shutdown: powersOffAfterCleaning(rt, booking, input) };
  if (intent.deployRequested !== true) {
    await rt.store.updateBooking(
      booking.id,
      recordIntent(input, START_IMAGING, { deployRequested: true, deployedBefore }, rt.now()),
    );
    await imager.deploy(fogHost.id, imageId, taskName, deployOptions);
    log.info({ imageId, fogHostId: fogHost.id, ...deployOptions }, "deploy task created");
  } else if (await deployUnderWay(imager, fogHost, deployedBefore, taskName)) {
    log.info({ fogHostId: fogHost.id }, "deploy task asked for before is there: adopted");
  } else {
    await imager.deploy(fogHost.id, imageId, taskName, deployOptions);
    log.info({ fogHostId: fogHost.id }, "deploy task asked for before is gone: created again");
  }

  // From here on the host is being changed: on failure it is quarantined, not simply freed.
  const { item: host } = await rt.store.updateHost(
    input.hostName,
    input.phase === "provision" ? hostInUse(booking.id) : hostCleaning(booking.id),
  );
  if (intent.rebootRequested === true) {
    // Asked for before a restart. A second reboot during the imaging would restart it: only
    // while FOG's task is still queued (the host has not network-booted) is it sent again.
    await rebootAgainIfNeverBooted(rt, imager, input.hostName, fogHost, taskName, () =>
      rebootIntoImaging(
        rt,
        inventoryHost,
        host,
        inventoryHost.address ?? host.address ?? fogHost.ip,
      ),
    );
  } else {
    await rt.store.updateBooking(
      booking.id,
      recordIntent(input, START_IMAGING, { rebootRequested: true }, rt.now()),
    );
    let accepted: string | null;
    try {
      accepted = await rebootIntoImaging(
        rt,
        inventoryHost,
        host,
        inventoryHost.address ?? host.address ?? fogHost.ip,
      );
    } catch (error) {
      // Refused or unreachable: no reboot happened, so a retry must send one.
      await rt.store.updateBooking(
        booking.id,
        recordIntent(input, START_IMAGING, { rebootRequested: false }, rt.now()),
      );
      throw error;
    }
    // Outside the reboot's failure handling: the reboot happened, whatever becomes of this write.
    if (accepted) await rt.store.updateHost(input.hostName, recordHostKey(accepted));
  }
  await updateBookingProgress(
    rt,
    booking.id,
    allOf(
      noteProgress(input.phase, input.generation, "imaging: waiting for the host to network-boot"),
      recordDone(input, START_IMAGING, started, rt.now()),
    ),
  );
  return started;
}

/**
 * A reboot asked for before a restart may never have been sent (the process died between its
 * intent and the call). FOG's task still queued means the host has not network-booted yet: it is
 * rebooted again. A host that does not answer is taken to be rebooting already (the first call
 * did go out); any other refusal is the step's failure. Once the task has moved on, nothing is
 * sent: the imaging deadline covers the rest.
 */
async function rebootAgainIfNeverBooted(
  rt: Runtime,
  imager: Imager,
  hostName: string,
  fogHost: ImagerHost,
  taskName: string,
  reboot: () => Promise<string | null>,
): Promise<void> {
  const log = rt.logger.child({ host: hostName });
  const task = await imager.progress(fogHost.id);
  if (!task || task.taskName !== taskName || task.stateId !== QUEUED) {
    log.warn("a reboot was sent for this imaging before and it is under way: not rebooting again");
    return;
  }
  log.warn("a reboot was asked for before, and FOG's task is still queued: rebooting again");
  try {
    const accepted = await reboot();
    if (accepted) await rt.store.updateHost(hostName, recordHostKey(accepted));
  } catch (error) {
    if (!(error instanceof TransientError || error instanceof HostUnreachableError)) throw error;
    log.info({ err: errorMessage(error) }, "the host does not answer: taken to be rebooting");
  }
}

/** FOG's task state before the host's imaging client checks in. */
const QUEUED = 1;

function asDeployed(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

/**
 * The deploy asked for is still in FOG's active tasks (under its name: another task on the host
 * is not ours to adopt), or has completed since.
 */
async function deployUnderWay(
  imager: Imager,
  fogHost: ImagerHost,
  deployedBefore: string | null,
  taskName: string,
): Promise<boolean> {
  if (fogHost.deployed !== null && fogHost.deployed !== deployedBefore) return true;
  return (await imager.progress(fogHost.id))?.taskName === taskName;
}

/**
 * Whether FOG powers the host off once its clean image is written: at the end of a job's booking
 * (the jobs API's cleanup says `power: "off"`), for a host its BMC can power on again. A host
 * rebooted over SSH is left on: nothing could start it for its next booking.
 */
export function powersOffAfterCleaning(
  rt: Pick<Runtime, "config">,
  booking: Booking,
  input: PhaseInput,
): boolean {
  if (input.phase !== "release" || booking.job === null) return false;
  const inventoryHost = inventoryHostByName(rt.config.inventory, input.hostName);
  return inventoryHost !== null && powerFor(rt.config, inventoryHost)?.type === "ipmi";
}

/** Reboots the host into its imaging; answers the host key accepted (null: no power control). */
async function rebootIntoImaging(
  rt: Runtime,
  inventoryHost: InventoryHost,
  host: Host,
  address: string | null,
): Promise<string | null> {
  const hostName = host.name;
  const power = powerFor(rt.config, inventoryHost);
  if (!power) {
    // Without power control the host must network-boot by other means (operator, WoL); the
    // imaging deadline still bounds the wait.
    rt.logger.warn({ host: hostName }, "no power control configured: not rebooting the host");
    return null;
  }
  if (!address) {
    throw new ConfigError(
      `host ${hostName} has no address: give one in ${rt.config.inventory.file} or register its IP in FOG`,
    );
  }
  requireInLabSubnets(address, rt.config.labSubnets, `the address of ${hostName}`);
  try {
    const { hostKey } = await rt.power.reboot({
      hostName,
      address,
      power,
      knownHostKey: host.hostKey,
      identity: identityProof(rt, host),
    });
    return hostKey;
  } catch (error) {
    // The imaging waits on the reboot: its failure names what did not answer (the relay, the
    // host), so that nobody looks for the cause in FOG, whose task is set and waiting.
    if (!(error instanceof UnreachableError)) throw error;
    throw new UnreachableError(
      `${hostName} could not be rebooted into its imaging (FOG's task waits for it): ${error.message}`,
      error.reason,
      { cause: error },
    );
  }
}
