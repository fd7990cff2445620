/**
 * The booked installer, on the pod host. Its short steps (directories, script copies) run in
 * StartInstaller; its deployment — hours long — is started detached on the host, writing its log
 * and, when it ends, its exit status next to its script. CheckInstaller looks once at that status
 * file; the workflow waits between looks until the install deadline.
 */
import { readFile } from "node:fs/promises";
import { posix } from "node:path";
import type { Runtime } from "../app/runtime";
import { LaasError } from "../errors";
import { installerPlugin } from "../installers/registry";
import type { InstallerStep } from "../installers/types";
import type { PhaseInput } from "../ports/engine";
import type { HostSession, RemoteCommand } from "../ports/relay";
import { bookingSink } from "./host-access";
import { imagingConfig, loadCurrentBooking } from "./imaging";
import { onHost } from "./pod";
import { noteProgress } from "./transitions";

/** The installer ended with a failure, or ran past its deadline. */
export class InstallerFailedError extends LaasError {
  override name = "InstallerFailed";
}

export interface InstallState {
  /** False when the installer has nothing to run (no installer booked): the workflow goes on. */
  running: boolean;
  done: boolean;
  /** Status and log files are `<base>.status` and `<base>.log` on the host. */
  base: string | null;
  deadline: string;
  pollSeconds: number;
}

/**
 * A fixed wrapper: detach from the SSH session (setsid), send all output to the log, run the
 * command given as arguments and write its exit status. The command and the file base reach it as
 * positional parameters, never as script text.
 */
const DETACHED =
  'exec >"$0.log" 2>&1 </dev/null; "$@"; echo "$?" >"$0.status.part"; mv -f -- "$0.status.part" "$0.status"';

export async function startInstaller(rt: Runtime, input: PhaseInput): Promise<InstallState> {
  const booking = await loadCurrentBooking(rt, input);
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
  const deadline = new Date(rt.now().getTime() + config.pod.installTimeoutSeconds * 1000);
  const state: InstallState = {
    running: false,
    done: true,
    base: null,
    deadline: deadline.toISOString(),
    pollSeconds: config.fog.pollSeconds,
  };
  const last = steps.at(-1);
  if (!last) return state;

  await rt.store.updateBooking(
    booking.id,
    noteProgress(input.phase, input.generation, `installing ${plugin.name}`),
  );
  const sink = bookingSink(rt.logger, booking.id, "StartInstaller");
  const base = posix.join(remoteDir, "deploy");
  await onHost(rt, input.hostName, async (host) => {
    for (const step of steps.slice(0, -1)) await runStep(host, step, sink);
    if (last.kind !== "run") {
      await runStep(host, last, sink);
      return;
    }
    await host.run({ argv: ["rm", "-f", "--", `${base}.status`], timeoutSeconds: 30 }, sink);
    await host.run(
      {
        argv: ["setsid", "-f", "sh", "-c", DETACHED, base, ...last.command.argv],
        timeoutSeconds: 30,
        display: `${last.description} (detached)`,
      },
      sink,
    );
  });
  if (last.kind !== "run") return state;
  return { ...state, running: true, done: false, base };
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
  };
  await host.run(command, sink);
}

export interface CheckInstallerInput extends PhaseInput {
  install: InstallState;
}

export async function checkInstaller(
  rt: Runtime,
  input: CheckInstallerInput,
): Promise<InstallState> {
  const booking = await loadCurrentBooking(rt, input);
  const { install } = input;
  if (!install.running || !install.base) return { ...install, done: true };
  const base = install.base;
  const status = await onHost(rt, input.hostName, async (host) => {
    const read = await host.run({
      argv: ["cat", "--", `${base}.status`],
      timeoutSeconds: 30,
      okExitCodes: [0, 1],
    });
    if (read.exitCode !== 0) return null;
    const code = Number.parseInt(read.stdout.trim(), 10);
    const tail = await host.run({
      argv: ["tail", "-n", "20", "--", `${base}.log`],
      timeoutSeconds: 30,
      okExitCodes: [0, 1],
    });
    return { code, tail: tail.stdout.trim() };
  });
  if (status === null) {
    if (rt.now().getTime() > Date.parse(install.deadline)) {
      throw new InstallerFailedError(
        `the installer on ${input.hostName} did not finish by its deadline ${install.deadline}`,
      );
    }
    return install;
  }
  if (status.code !== 0) {
    throw new InstallerFailedError(
      `the installer on ${input.hostName} exited with ${Number.isNaN(status.code) ? "an unreadable status" : status.code}; its log ends:\n${status.tail}`,
    );
  }
  await rt.store.updateBooking(
    booking.id,
    noteProgress(input.phase, input.generation, "installer finished"),
  );
  return { ...install, running: false, done: true };
}
