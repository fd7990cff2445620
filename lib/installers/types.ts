import { join, posix } from "node:path";
import type { DomainFile, NetworkFile } from "../config/types";
import { ConfigError } from "../errors";
import type { RemoteCommand } from "../ports/relay";
import { templatesDir } from "../templates";

export interface InstallerContext {
  /**
   * The scenario to deploy. The caller decides it: the booking's scenario, or the installer
   * config's `scenario` when the booking names none; null when neither does (the installer's
   * script then uses its own default).
   */
  scenario: string | null;
  /** FOG name of the pod host (the lab's name for the pod). */
  hostName: string;
  domains: DomainFile;
  networks: NetworkFile;
  /** Directory on the host the plugin's scripts are copied to. */
  remoteDir: string;
}

export type InstallerStep =
  | {
      description: string;
      kind: "copy";
      /** Absolute local path of a file under templates/installers/<name>/. */
      source: string;
      /** Absolute path on the host. */
      destination: string;
    }
  | { description: string; kind: "run"; command: RemoteCommand };

export interface InstallerPlugin {
  name: string;
  /** Dashboard names it answers to, lower-case. */
  aliases: string[];
  /** Domain started right after the pod is defined (the installer's master), or none. */
  masterDomain(domains: DomainFile): string | null;
  steps(context: InstallerContext): InstallerStep[];
}

/** templates/installers/ (see lib/templates.ts). */
export function installerTemplatesDir(): string {
  return templatesDir("installers");
}

/**
 * The master of a virtual pod is the VM the installer itself runs in, which is installed from
 * the installer's ISO: the first domain that boots an ISO, else the first domain.
 */
export function isoBootedOrFirst(domains: DomainFile): string | null {
  const booted = domains.domains.find((domain) => domain.iso.used) ?? domains.domains[0];
  return booted?.name ?? null;
}

/** Seconds an installer deployment may take: OpenStack deployments run for hours. */
export const DEPLOY_TIMEOUT_SECONDS = 4 * 3600;

/**
 * The usual plugin: make the remote directory, copy templates/installers/<plugin>/deploy.sh
 * there and run it with bash. Every value reaches the script as its own argument, never pasted
 * into script text or a command line.
 */
export function deployScriptSteps(
  plugin: string,
  context: InstallerContext,
  args: string[],
): InstallerStep[] {
  const { remoteDir } = context;
  if (!posix.isAbsolute(remoteDir)) {
    throw new ConfigError(`${plugin}: remote directory must be an absolute path, got ${remoteDir}`);
  }
  const destination = posix.join(remoteDir, "deploy.sh");
  return [
    {
      description: `create ${remoteDir} on ${context.hostName}`,
      kind: "run",
      command: { argv: ["mkdir", "-p", "--", remoteDir], timeoutSeconds: 30 },
    },
    {
      description: `copy the ${plugin} deployment script`,
      kind: "copy",
      source: join(installerTemplatesDir(), plugin, "deploy.sh"),
      destination,
    },
    {
      description: `deploy ${context.scenario ?? "the default scenario"} with ${plugin}`,
      kind: "run",
      command: { argv: ["bash", destination, ...args], timeoutSeconds: DEPLOY_TIMEOUT_SECONDS },
    },
  ];
}

/** `--scenario <name>` when there is one; the script's default otherwise. */
export function scenarioArgs(scenario: string | null): string[] {
  return scenario === null ? [] : ["--scenario", scenario];
}
