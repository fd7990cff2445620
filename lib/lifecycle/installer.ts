/**
 * The booked installer, on the pod host. Its short steps (directories, script copies) run in
 * StartInstaller; its deployment — hours long — is started detached on the host, writing its log
 * and, when it ends, its exit status next to its script. The lab's watcher reads that status file
 * (watch-installer.ts) and completes the AwaitInstaller callback task.
 *
 * A launch is announced on the booking first; StartInstaller run again after that finds the
 * deployment's log on the host and adopts it instead of starting the installer a second time.
 */
import { readFile } from "node:fs/promises";
import { posix } from "node:path";
import type { JsonObject } from "../domain/run";
import { installerPlugin } from "../installers/registry";
import type { InstallerStep } from "../installers/types";
import type { PhaseInput } from "../ports/engine";
import type { HostSession, RemoteCommand } from "../ports/relay";
import type { Runtime } from "../ports/runtime";
import { doneResult, intentOf, recordDone, recordIntent } from "./checkpoints";
import { imagingConfig, loadCurrentBooking } from "./current-run";
import { bookingSink, onHost } from "./host-access";
import { updateBookingProgress } from "./progress";
import { noteProgress } from "./transitions";

export const START_INSTALLER = "startInstaller";

export interface InstallStarted extends JsonObject {
  /** False when the installer has nothing to run (no installer booked): nothing to wait for. */
  running: boolean;
  /** Status and log files are `<base>.status` and `<base>.log` on the host. */
  base: string | null;
}

/**
 * A fixed wrapper: detach from the SSH session (setsid), send all output to the log, run the
 * command given as arguments and write its exit status. The command and the file base reach it as
 * positional parameters, never as script text.
 */
const DETACHED =
  'exec >"$0.log" 2>&1 </dev/null; "$@"; echo "$?" >"$0.status.part"; mv -f -- "$0.status.part" "$0.status"';

export async function startInstaller(rt: Runtime, input: PhaseInput): Promise<InstallStarted> {
  const booking = await loadCurrentBooking(rt, input);
  const recorded = doneResult(booking, input, START_INSTALLER);
  if (recorded !== undefined) return recorded as InstallStarted;
  const config = imagingConfig(rt, booking, input.phase);
  const plugin = installerPlugin(booking.installer);
  const remoteDir = posix.join(config.pod.remoteDir, `booking-${booking.id}`);
  const steps = plugin.steps({
    scenario: booking.scenario ?? config.scenario,
    hostName: input.hostName,
    domains: config.hypervisor.vms,
    networks: config.hypervisor.networks,
    remoteDir,
  });
  const last = steps.at(-1);
  const base = posix.join(remoteDir, "deploy");
  const launched: InstallStarted =
    last?.kind === "run" ? { running: true, base } : { running: false, base: null };
  const relaunch = intentOf(booking, input, START_INSTALLER).launched === true;
  if (!last) {
    await rt.store.updateBooking(
      booking.id,
      recordDone(input, START_INSTALLER, launched, rt.now()),
    );
    return launched;
  }

  await updateBookingProgress(
    rt,
    booking.id,
    noteProgress(input.phase, input.generation, `installing ${plugin.name}`),
  );
  const sink = bookingSink(rt.logger, booking.id, "StartInstaller");
  await onHost(rt, input.hostName, async (host) => {
    if (relaunch && (await launchedBefore(host, base))) {
      rt.logger.warn(
        { bookingId: booking.id, host: input.hostName },
        "the installer was started before a restart: adopted, not started again",
      );
      return;
    }
    for (const step of last.kind === "run" ? steps.slice(0, -1) : steps) {
      await runStep(host, step, sink);
    }
    if (last.kind !== "run") return;
    await host.run(
      { argv: ["rm", "-f", "--", `${base}.status`], timeoutSeconds: 30, idempotent: true },
      sink,
    );
    await rt.store.updateBooking(
      booking.id,
      recordIntent(input, START_INSTALLER, { launched: true, base }, rt.now()),
    );
    await host.run(
      {
        argv: ["setsid", "-f", "sh", "-c", DETACHED, base, ...last.command.argv],
        timeoutSeconds: 30,
        display: `${last.description} (detached)`,
      },
      sink,
    );
  });
  await rt.store.updateBooking(booking.id, recordDone(input, START_INSTALLER, launched, rt.now()));
  return launched;
}

/** The detached wrapper opens its log first thing: a log there means it was started. */
async function launchedBefore(host: HostSession, base: string): Promise<boolean> {
  const probe = await host.run({
    argv: ["test", "-e", `${base}.log`],
    timeoutSeconds: 30,
    okExitCodes: [0, 1],
    idempotent: true,
  });
  return probe.exitCode === 0;
}

async function runStep(
  host: HostSession,
  step: InstallerStep,
  sink: ReturnType<typeof bookingSink>,
) {
  if (step.kind === "run") {
    await host.run(step.command, sink);
    return;
  }
  const command: RemoteCommand = {
    argv: ["cp", "/dev/stdin", step.destination],
    stdin: await readFile(step.source, "utf8"),
    timeoutSeconds: 60,
    display: `copy ${step.description} to ${step.destination}`,
    // The same bytes written again: the file ends as once.
    idempotent: true,
  };
  await host.run(command, sink);
}
