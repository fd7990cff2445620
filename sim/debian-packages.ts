/**
 * The real daemons the simulated lab runs (sshd, slapd, OpenIPMI's ipmi_sim) come from Debian's
 * packages, installed when missing: the README's lines run on a fresh machine as root. `apt-get
 * update` runs only if the first install fails (a fresh machine's package lists may be stale).
 * Test files run in parallel, so apt waits for another's install rather than failing on the lock.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { unlink, writeFile } from "node:fs/promises";
import { promisify } from "node:util";

const run = promisify(execFile);
const POLICY_RC = "/usr/sbin/policy-rc.d";
const APT = ["-o", "DPkg::Lock::Timeout=300"];

export interface InstallOptions {
  /**
   * Keep the packages' init scripts from starting their daemons (a system slapd, kernel IPMI
   * drivers): a policy-rc.d answering 101 while apt runs, as Debian's invoke-rc.d honours.
   */
  noServiceStart?: boolean;
  /** Leave out the packages' recommends (default: installed, as apt does). */
  noRecommends?: boolean;
}

export async function installDebianPackages(
  packages: readonly string[],
  options: InstallOptions = {},
): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const recommends = options.noRecommends ? ["--no-install-recommends"] : [];
  const install = [...APT, "install", "-y", ...recommends, ...packages];
  const ownPolicy = options.noServiceStart === true && !existsSync(POLICY_RC);
  if (ownPolicy) await writeFile(POLICY_RC, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  try {
    try {
      await run("apt-get", install, { env, timeout: 600_000 });
    } catch {
      await run("apt-get", [...APT, "update"], { env, timeout: 600_000 });
      await run("apt-get", install, { env, timeout: 600_000 });
    }
  } finally {
    if (ownPolicy) await unlink(POLICY_RC).catch(() => undefined);
  }
}

/** Installs `packages` unless every program is there, and checks that they are after. */
export async function ensurePrograms(
  programs: readonly string[],
  packages: readonly string[],
  options: InstallOptions = {},
): Promise<void> {
  if (programs.every((program) => existsSync(program))) return;
  await installDebianPackages(packages, options);
  for (const program of programs) {
    if (!existsSync(program)) {
      throw new Error(`${packages.join(", ")} installed but ${program} is missing`);
    }
  }
}
