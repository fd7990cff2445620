/**
 * BASELINE FOR BENCHMARKS ONLY: the steps of the polling workflows in this folder, as they were
 * before waits became callback tasks — each execution looking at FOG, the host or its installer
 * itself, once per poll, with the workflow's Wait state in between (git 775777b's CheckImaging,
 * CheckHost and CheckInstaller). The other steps are today's. Run by `npm run bench` only.
 */

import type { StepHandler } from "../../lib/adapters/local/local-engine";
import { runtime } from "../../lib/app/runtime";
import { inventoryHostByName } from "../../lib/config/load";
import { errorMessage, HostUnreachableError, TransientError } from "../../lib/errors";
import { AddressNotFoundError, discoverAddress } from "../../lib/lab/address";
import { doneResult } from "../../lib/lifecycle/checkpoints";
import { imagingConfig, loadCurrentBooking } from "../../lib/lifecycle/current-run";
import { hostLogin, onHost, requireRelay } from "../../lib/lifecycle/host-access";
import { observeDeployed, recordHostKey } from "../../lib/lifecycle/transitions";
import type { PhaseInput } from "../../lib/ports/engine";

type Json = Record<string, unknown>;
type Event = PhaseInput & Json;

const FIRST_PAUSE_SECONDS = 2;
const LONGEST_PAUSE_SECONDS = 60;

/** The baseline's step functions, by the name its ASL's Fn::GetAtt gives. */
export function baselineSteps(today: Record<string, StepHandler>): Record<string, StepHandler> {
  const call = (name: string, event: unknown) =>
    (today[name] as (event: unknown) => Promise<unknown>)(event);
  const steps: Record<string, (event: Event) => Promise<unknown>> = {
    startImaging: async (event) => {
      const started = (await call("startImaging", event)) as Json;
      const rt = await runtime();
      const config = imagingConfig(rt, await loadCurrentBooking(rt, event), event.phase);
      return { ...started, pollSeconds: config.fog.pollSeconds, done: false };
    },
    checkImaging: async (event) => {
      const rt = await runtime();
      const booking = await loadCurrentBooking(rt, event);
      const imaging = event.imaging as Json;
      const imager = rt.imagerFor(imagingConfig(rt, booking, event.phase).fog);
      const fogHostId = String(imaging.fogHostId);
      if (await imager.progress(fogHostId)) return { ...imaging, done: false };
      const fogHost = await imager.findHost(event.hostName);
      if (fogHost.deployed === null || fogHost.deployed === imaging.deployedBefore) {
        throw new Error(`the imaging task of ${event.hostName} left FOG without a deploy`);
      }
      await rt.store.updateHost(event.hostName, observeDeployed(fogHost.deployed));
      return { ...imaging, done: true };
    },
    checkHost: async (event) => {
      const rt = await runtime();
      const booking = await loadCurrentBooking(rt, event);
      const config = imagingConfig(rt, booking, event.phase);
      const reach = (event.reach as Json | undefined) ?? { waitSeconds: FIRST_PAUSE_SECONDS / 2 };
      try {
        const host = await rt.store.getHost(event.hostName);
        if (!host) throw new HostUnreachableError(`no host ${event.hostName}`);
        const inventoryHost = inventoryHostByName(rt.config.inventory, host.name);
        const { address } = await discoverAddress(
          { relay: requireRelay(rt), logger: rt.logger },
          {
            hostName: host.name,
            staticAddress: inventoryHost?.address ?? null,
            mac: host.mac,
            dhcpLog: config.dhcpLog,
            dhcpLogFormat: config.dhcpLogFormat,
            dhcpServer: null,
            labSubnets: rt.config.labSubnets,
          },
        );
        const login = hostLogin(rt, host, address);
        const hostKey = await requireRelay(rt).session(async (session) => {
          const reached = await session.host(login);
          await reached.run({ argv: ["true"], timeoutSeconds: 30 });
          return reached.hostKey;
        });
        await rt.store.updateHost(host.name, (h) => {
          const keyed = recordHostKey(hostKey)(h) ?? h;
          return { ...keyed, address };
        });
        return { ...reach, done: true };
      } catch (error) {
        if (!(error instanceof AddressNotFoundError || error instanceof TransientError)) {
          throw new Error(errorMessage(error));
        }
        const waitSeconds = Math.min(Number(reach.waitSeconds) * 2, LONGEST_PAUSE_SECONDS);
        return { ...reach, done: false, waitSeconds };
      }
    },
    startInstaller: async (event) => {
      const started = (await call("startInstaller", event)) as Json;
      const rt = await runtime();
      const config = imagingConfig(rt, await loadCurrentBooking(rt, event), event.phase);
      return { ...started, done: started.running !== true, pollSeconds: config.fog.pollSeconds };
    },
    checkInstaller: async (event) => {
      const rt = await runtime();
      const booking = await loadCurrentBooking(rt, event);
      const install = event.install as Json;
      const started = doneResult(booking, event, "startInstaller") as Json | undefined;
      const base = String(started?.base ?? install.base);
      const status = await onHost(rt, event.hostName, async (host) =>
        host.run({
          argv: ["cat", "--", `${base}.status`],
          timeoutSeconds: 30,
          okExitCodes: [0, 1],
        }),
      );
      if (status.exitCode !== 0) return { ...install, done: false };
      if (status.stdout.trim() !== "0") throw new Error(`the installer exited ${status.stdout}`);
      return { ...install, done: true };
    },
  };
  const handlers: Record<string, StepHandler> = { ...today };
  for (const [name, step] of Object.entries(steps)) handlers[name] = step as StepHandler;
  return handlers;
}
