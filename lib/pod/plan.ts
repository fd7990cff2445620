/**
 * The virtual pod as commands for the pod host: what to tear down, define, fetch, create and
 * start, in order. Each command is an argv array (the relay quotes every argument on its own) and
 * libvirt XML always travels on standard input (`virsh define /dev/stdin`), never in an argument,
 * so no config value is ever read by a shell. Names are passed as option values
 * (`--domain <name>`), which virsh never mistakes for an option or a command separator.
 *
 * `/dev/stdin` must be a pipe or a file, as sshd gives a command; virsh cannot open it on a
 * socket (ENXIO), which is what Node's child_process connects a local child's stdin through.
 *
 * These functions only build lists (reading the XML templates is their one side effect); the
 * caller runs them in order and reads the MACs from the trailing `domiflist` outputs with
 * parseDomiflist (domiflist.ts).
 */
import { dirname } from "node:path";
import { displayPath } from "../config/paths";
import type { DomainFile, InstallerConfig, NetworkFile } from "../config/types";
import { ConfigError } from "../errors";
import type { RemoteCommand } from "../ports/relay";
import { isoFetchCommand, SHA256_HEX } from "./iso";
import { renderDomainXml, renderNetworkXml } from "./render";

export const DEFAULT_CONNECT_URI = "qemu:///system";

/** Seconds allowed per kind of command. */
export const POD_TIMEOUTS = {
  /** Quick libvirt calls (define, undefine, net-*). */
  virsh: 60,
  /** `destroy` is a hard power-off, but a hung QEMU can take a while to go. */
  destroy: 120,
  /** `start` of a VM: QEMU startup, memory allocation. */
  start: 120,
  /** Fetching an installer ISO (several GB) over the lab network, and hashing it. */
  isoFetch: 3600,
  /** qcow2 images are sparse: creating one is quick whatever its size. */
  diskCreate: 300,
  mkdir: 30,
} as const;

export interface PodPlanOptions {
  /** libvirt connection URI on the host; tests use test:///default. */
  connectUri?: string;
}

export interface BuildPlanOptions extends PodPlanOptions {
  /** Domain started once everything is defined (the installer's master), or none. */
  masterDomain: string | null;
  /** Size of each qcow2 disk, in GB. */
  diskSizeGB: number;
}

function virsh(uri: string, ...args: string[]): string[] {
  return ["virsh", "-c", uri, ...args];
}

/**
 * virsh exits 1 for every error alike, so "no such domain/network" (a host fresh from imaging
 * has none) and "domain is not running" (`destroy` of a stopped VM) cannot be told apart from
 * other failures by the exit code: teardown accepts 0 and 1. A real failure does not pass
 * unnoticed: what is left behind makes the define/start that follows fail (`net-start` of a
 * network still active, `start` of a master still running).
 */
const TOLERATE_MISSING = [0, 1];

/**
 * Removes the pod's domains, then its networks (domains use the networks). Only names of the
 * given files are touched; bridges of `type: bridge` interfaces belong to the host and stay.
 */
export function teardownPlan(
  networks: NetworkFile,
  domains: DomainFile,
  options: PodPlanOptions = {},
): RemoteCommand[] {
  const uri = options.connectUri ?? DEFAULT_CONNECT_URI;
  const commands: RemoteCommand[] = [];
  for (const { name } of domains.domains) {
    commands.push(
      {
        argv: virsh(uri, "destroy", "--domain", name),
        timeoutSeconds: POD_TIMEOUTS.destroy,
        okExitCodes: TOLERATE_MISSING,
        expected: `domain ${name} is not running (or not defined): nothing to stop`,
        // Run twice, the second finds nothing to remove: safe to run again on a lost connection.
        idempotent: true,
      },
      {
        // Managed-save images and snapshot metadata would otherwise make undefine refuse.
        argv: virsh(uri, "undefine", "--domain", name, "--managed-save", "--snapshots-metadata"),
        timeoutSeconds: POD_TIMEOUTS.virsh,
        okExitCodes: TOLERATE_MISSING,
        expected: `domain ${name} is not defined: nothing to remove`,
        // Run twice, the second finds nothing to remove: safe to run again on a lost connection.
        idempotent: true,
      },
    );
  }
  for (const { name } of networks.networks) {
    commands.push(
      {
        argv: virsh(uri, "net-destroy", "--network", name),
        timeoutSeconds: POD_TIMEOUTS.virsh,
        okExitCodes: TOLERATE_MISSING,
        expected: `network ${name} is not active (or not defined): nothing to stop`,
        // Run twice, the second finds nothing to remove: safe to run again on a lost connection.
        idempotent: true,
      },
      {
        argv: virsh(uri, "net-undefine", "--network", name),
        timeoutSeconds: POD_TIMEOUTS.virsh,
        okExitCodes: TOLERATE_MISSING,
        expected: `network ${name} is not defined: nothing to remove`,
        // Run twice, the second finds nothing to remove: safe to run again on a lost connection.
        idempotent: true,
      },
    );
  }
  return commands;
}

/** Release: the pod's VMs and networks go before the host is reimaged. */
export function removalPlan(installer: InstallerConfig, options: PodPlanOptions = {}) {
  return teardownPlan(installer.hypervisor.networks, installer.hypervisor.vms, options);
}

/** `mkdir -p` of a file's directory, once per directory in a plan. */
function parentDirectory(path: string, made: Set<string>): RemoteCommand[] {
  const directory = dirname(path);
  if (made.has(directory)) return [];
  made.add(directory);
  return [
    {
      argv: ["mkdir", "-p", "--", directory],
      timeoutSeconds: POD_TIMEOUTS.mkdir,
      idempotent: true,
    },
  ];
}

/**
 * One fetch per ISO location; two domains wanting different ISOs (another URL or another
 * sha256) at one location is an error. With `iso.sha256` the fetch is the checked one (iso.ts):
 * an ISO already there is kept when its digest matches, and a fetched one that does not match
 * is removed and fails the step.
 */
function isoFetches(domains: DomainFile, made: Set<string>): RemoteCommand[] {
  const wanted = new Map<string, { url: string; sha256: string | null }>();
  const commands: RemoteCommand[] = [];
  const where = displayPath(domains.file);
  for (const { name, iso } of domains.domains) {
    if (!iso.used) continue;
    if (!iso.url || !iso.location) {
      throw new ConfigError(`${where}: ${name}: iso.used needs URL and location`);
    }
    // The schema keeps digests so; a definition built otherwise is held to the same form.
    if (iso.sha256 !== null && !SHA256_HEX.test(iso.sha256)) {
      throw new ConfigError(
        `${where}: ${name}: iso.sha256 must be 64 lower-case hex digits, got ${JSON.stringify(iso.sha256)}`,
      );
    }
    const earlier = wanted.get(iso.location);
    if (earlier) {
      if (earlier.url !== iso.url) {
        throw new ConfigError(
          `${where}: ${name}: iso.location ${iso.location} is given two URLs (${earlier.url}, ${iso.url})`,
        );
      }
      if (earlier.sha256 !== iso.sha256) {
        throw new ConfigError(
          `${where}: ${name}: iso.location ${iso.location} is given two sha256 (${earlier.sha256 ?? "none"}, ${iso.sha256 ?? "none"})`,
        );
      }
      continue;
    }
    wanted.set(iso.location, { url: iso.url, sha256: iso.sha256 });
    commands.push(
      ...parentDirectory(iso.location, made),
      iso.sha256 === null
        ? {
            // --url takes the next argument as the URL whatever it looks like.
            argv: ["curl", "-fsSL", "--retry", "3", "-o", iso.location, "--url", iso.url],
            timeoutSeconds: POD_TIMEOUTS.isoFetch,
          }
        : isoFetchCommand(iso.location, iso.url, iso.sha256, POD_TIMEOUTS.isoFetch),
    );
  }
  return commands;
}

function diskCreations(domains: DomainFile, sizeGB: number, made: Set<string>): RemoteCommand[] {
  const owners = new Map<string, string>();
  const commands: RemoteCommand[] = [];
  for (const { name, disk } of domains.domains) {
    const owner = owners.get(disk);
    if (owner !== undefined) {
      throw new ConfigError(
        `${displayPath(domains.file)}: ${name}: disk ${disk} is already the disk of ${owner}`,
      );
    }
    owners.set(disk, name);
    commands.push(...parentDirectory(disk, made), {
      // A fresh image every time: qemu-img create replaces an existing file.
      argv: ["qemu-img", "create", "-f", "qcow2", "--", disk, `${sizeGB}G`],
      timeoutSeconds: POD_TIMEOUTS.diskCreate,
    });
  }
  return commands;
}

/**
 * The whole pod, in order: teardown of anything left with the same names; networks defined,
 * started and autostarted; ISOs fetched (when `iso.used`; checked when `iso.sha256` is given);
 * qcow2 disks created; domains defined; the master started; then `domiflist` of every domain,
 * whose output holds the MACs.
 */
export function buildPlan(installer: InstallerConfig, options: BuildPlanOptions): RemoteCommand[] {
  const { networks, vms: domains } = installer.hypervisor;
  const uri = options.connectUri ?? DEFAULT_CONNECT_URI;
  if (!Number.isSafeInteger(options.diskSizeGB) || options.diskSizeGB <= 0) {
    throw new ConfigError(
      `disk size must be a positive whole number of GB, got ${options.diskSizeGB}`,
    );
  }
  const master = options.masterDomain;
  if (master !== null && !domains.domains.some((domain) => domain.name === master)) {
    throw new ConfigError(`${displayPath(domains.file)}: no domain ${master} to start as master`);
  }

  const commands = teardownPlan(networks, domains, options);
  for (const network of networks.networks) {
    commands.push(
      {
        argv: virsh(uri, "net-define", "/dev/stdin"),
        stdin: renderNetworkXml(networks, network),
        timeoutSeconds: POD_TIMEOUTS.virsh,
        display: `virsh net-define (network ${network.name})`,
      },
      {
        argv: virsh(uri, "net-start", "--network", network.name),
        timeoutSeconds: POD_TIMEOUTS.virsh,
      },
      {
        argv: virsh(uri, "net-autostart", "--network", network.name),
        timeoutSeconds: POD_TIMEOUTS.virsh,
      },
    );
  }
  const made = new Set<string>();
  commands.push(...isoFetches(domains, made), ...diskCreations(domains, options.diskSizeGB, made));
  for (const domain of domains.domains) {
    commands.push({
      argv: virsh(uri, "define", "/dev/stdin"),
      stdin: renderDomainXml(domains, domain),
      timeoutSeconds: POD_TIMEOUTS.virsh,
      display: `virsh define (domain ${domain.name})`,
    });
  }
  if (master !== null) {
    commands.push({
      argv: virsh(uri, "start", "--domain", master),
      timeoutSeconds: POD_TIMEOUTS.start,
    });
  }
  for (const { name } of domains.domains) {
    commands.push({
      argv: virsh(uri, "domiflist", "--domain", name),
      timeoutSeconds: POD_TIMEOUTS.virsh,
    });
  }
  return commands;
}
