/**
 * Loading the lab's configuration: pharos.yaml and everything it refers to (inventory, every
 * installer config in default_configs, each with its networks, domains, inventory and VPN files)
 * is read and validated at start, so that a mistake stops the lab before any booking rather
 * than in the middle of one. Every problem is a ConfigError naming the file and field. Every
 * config names the same store (one-store.ts), and no secret is a shipped example unless the
 * demo or a test says so (examples.ts).
 */
import { dirname, resolve } from "node:path";
import { LONGEST_WATCH_INTERVAL_SECONDS } from "../workflow/wait-ceilings";
import { handoverConfig, ldapConnection } from "./handover";
import { ipmiIssues } from "./ipmi";
import { configError, describeValue, type Issue, parseWith, throwIfIssues } from "./issues";
import { requireOneStore, type StoreOf } from "./one-store";
import { displayPath, resolveConfigPath } from "./paths";
import { labPower, powerOverride, relayConfig } from "./power";
import {
  applyAliases,
  domainFileSchema,
  installerSchema,
  inventorySchema,
  isNoInstaller,
  networkFileSchema,
  PHAROS_ALIASES,
  pharosSchema,
  type RawPharos,
  VPN_ALIASES,
  vpnSchema,
} from "./schema";
import { defaultSecretPolicy, type SecretPolicy, secretField } from "./secrets";
import type {
  DomainFile,
  InstallerConfig,
  Inventory,
  InventoryHost,
  NetworkFile,
  PharosConfig,
  VpnConfig,
} from "./types";
import { type Reference, readTextFile, readYamlFile } from "./yaml-file";

export {
  installerConfigFor,
  inventoryHostByName,
  inventoryHostByResource,
  POWER_DEFAULTS,
  powerFor,
} from "./lookup";

export interface LoadOptions {
  /**
   * Accept the example secrets shipped in conf/secrets/. Default: only when the environment says
   * this is the demo or a test (`LAAS_ALLOW_EXAMPLE_SECRETS=1`).
   */
  allowExampleSecrets?: boolean;
  /**
   * loadInstallerConfig: the store of the lab the installer config serves (the pharos.yaml
   * beside it), which it and its VPN file must name. Default: the installer config's own.
   */
  labStore?: StoreOf;
}

function policyOf(options: LoadOptions): SecretPolicy {
  return options.allowExampleSecrets === undefined
    ? defaultSecretPolicy()
    : { allowExamples: options.allowExampleSecrets };
}

/** Loads pharos.yaml and every file it refers to. */
export async function loadPharosConfig(
  path: string,
  options: LoadOptions = {},
): Promise<PharosConfig> {
  return new Loader(policyOf(options)).pharos(resolve(path));
}

/** Loads one installer config (`laas deploy --config conf/fuel.yaml`) and the files it names. */
export async function loadInstallerConfig(
  path: string,
  options: LoadOptions = {},
): Promise<InstallerConfig> {
  const config = await new Loader(policyOf(options)).installer(resolve(path), null);
  await requireOneStore(options.labStore ?? config, [config]);
  return config;
}

interface DefaultConfigEntry {
  /** null for the no-installer config. */
  key: string | null;
  /** The key as it appears in the file, for messages. */
  label: string;
  path: string;
}

function defaultConfigEntries(raw: Record<string, string>, issues: Issue[]): DefaultConfigEntry[] {
  const entries: DefaultConfigEntry[] = [];
  const seen = new Map<string, string>();
  for (const [written, path] of Object.entries(raw)) {
    // YAML `null:` and `~:` arrive as the empty key.
    const label = written === "" ? "null" : written;
    const key = isNoInstaller(written) ? null : written.trim();
    const folded = key === null ? "" : key.toLowerCase();
    const other = seen.get(folded);
    if (other !== undefined) {
      issues.push({
        path: `default_configs.${label}`,
        message: `names the same installer as ${other}`,
      });
      continue;
    }
    seen.set(folded, label);
    entries.push({ key, label, path });
  }
  if (!seen.has("")) {
    issues.push({
      path: "default_configs",
      message:
        "needs an entry for no installer (key null or none): its image is the clean image written at release",
    });
  }
  return entries;
}

function sameInstaller(key: string | null, installer: string | null): boolean {
  if (key === null || installer === null) return key === installer;
  return key.toLowerCase() === installer.toLowerCase();
}

/** One load: files named by several configs are read once and shared. */
class Loader {
  readonly #cache = new Map<string, Promise<unknown>>();
  readonly #policy: SecretPolicy;

  constructor(policy: SecretPolicy) {
    this.#policy = policy;
  }

  #once<T>(kind: string, file: string, load: () => Promise<T>): Promise<T> {
    const key = `${kind}:${file}`;
    let pending = this.#cache.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = load();
      this.#cache.set(key, pending);
    }
    return pending;
  }

  async pharos(file: string): Promise<PharosConfig> {
    const aliased = applyAliases(await readYamlFile(file, null), PHAROS_ALIASES);
    const raw = parseWith(pharosSchema, aliased.data, file, aliased.issues);
    const dir = dirname(file);
    const issues: Issue[] = [];
    const policy = this.#policy;
    const token = await secretField(raw.token, dir, "token", issues, policy);
    const power = raw.power ? await labPower(raw.power, dir, "power", issues, policy) : null;
    const relay = raw.relay ? await relayConfig(raw.relay, dir, issues, policy) : null;
    const handover = raw.handover ? await handoverConfig(raw.handover, file, issues, policy) : null;
    const web = raw.web
      ? {
          address: raw.web.address,
          port: raw.web.port,
          token: raw.web.token
            ? await secretField(raw.web.token, dir, "web.token", issues, policy)
            : null,
        }
      : null;
    const entries = defaultConfigEntries(raw.default_configs, issues);
    if ((raw.power || raw.relay) && !raw.lab_subnets) {
      issues.push({
        path: "lab_subnets",
        message:
          "required when power or relay is set: the subnets (CIDRs) lab hosts live on; no address outside them is reached",
      });
    }
    issues.push(...jobsApiIssues(raw));
    throwIfIssues(file, issues);

    const inventory = await this.inventory(resolveConfigPath(dir, raw.inventory), {
      file,
      field: "inventory",
    });
    const defaultConfigs = new Map<string | null, InstallerConfig>();
    for (const entry of entries) {
      const field = `default_configs.${entry.label}`;
      const config = await this.installer(resolveConfigPath(dir, entry.path), { file, field });
      if (!sameInstaller(entry.key, config.installer)) {
        throw configError(file, [
          {
            path: field,
            message: `${displayPath(config.file)} is the config of installer ${describeValue(config.installer)}`,
          },
        ]);
      }
      defaultConfigs.set(entry.key, config);
    }
    const database = resolveConfigPath(dir, raw.database);
    await requireOneStore({ file, database }, [...defaultConfigs.values()]);
    const cleanConfig = defaultConfigs.get(null);
    if (!cleanConfig)
      throw configError(file, [{ path: "default_configs", message: "no null entry" }]);
    const inventories = [inventory, ...[...defaultConfigs.values()].map((c) => c.inventory)];
    const hostPower = inventories.flatMap((i) => i.hosts).find((host) => host.power !== null);
    if (!raw.lab_subnets && hostPower) {
      throw configError(file, [
        {
          path: "lab_subnets",
          message: `required when a host has power settings (${hostPower.name} in the inventory): the subnets (CIDRs) lab hosts live on`,
        },
      ]);
    }
    if (!power) {
      requireOwnPowerKeys(file, inventories);
    }
    for (const found of ipmiIssues(file, power, relay, inventories)) {
      throwIfIssues(found.file, found.issues);
    }
    const watchSeconds = raw.watch_interval ?? watchIntervalOf(file, defaultConfigs);
    return {
      file,
      dashboard: raw.dashboard,
      dashboardApi: raw.dashboard_api,
      token,
      jobs: raw.jobs
        ? { lab: raw.jobs.lab, images: new Map(Object.entries(raw.jobs.images)) }
        : null,
      database,
      defaultConfigs,
      cleanConfig,
      inventory,
      loggingDir: resolveConfigPath(dir, raw.logging_dir),
      polling: raw.polling,
      watchSeconds,
      quarantineAfter: raw.quarantine_after,
      bookingRetentionDays: raw.booking_retention_days,
      labSubnets: raw.lab_subnets ?? [],
      power,
      relay,
      handover,
      web,
    };
  }

  installer(file: string, from: Reference | null): Promise<InstallerConfig> {
    return this.#once("installer", file, async () => {
      const raw = parseWith(installerSchema, await readYamlFile(file, from), file);
      const dir = dirname(file);
      const issues: Issue[] = [];
      const apiKey = await secretField(raw.fog.api_key, dir, "fog.api_key", issues, this.#policy);
      const userKey = await secretField(
        raw.fog.user_key,
        dir,
        "fog.user_key",
        issues,
        this.#policy,
      );
      if (raw.dhcp_server !== null && !raw.dhcp_server_host_key) {
        issues.push({
          path: "dhcp_server_host_key",
          message: "required when dhcp_server is set: the DHCP server's SSH host key is pinned",
        });
      }
      throwIfIssues(file, issues);

      const ref = (field: string): Reference => ({ file, field });
      const networks = await this.networks(
        resolveConfigPath(dir, raw.hypervisor_config.networks),
        ref("hypervisor_config.networks"),
      );
      const vms = await this.domains(
        resolveConfigPath(dir, raw.hypervisor_config.vms),
        ref("hypervisor_config.vms"),
      );
      throwIfIssues(file, unknownNetworks(networks, vms));
      const inventory = await this.inventory(
        resolveConfigPath(dir, raw.inventory),
        ref("inventory"),
      );
      const vpn = await this.vpn(resolveConfigPath(dir, raw.vpn_config), ref("vpn_config"));
      const config: InstallerConfig = {
        file,
        installer: raw.installer,
        database: resolveConfigPath(dir, raw.database),
        dhcpLog: raw.dhcp_log,
        dhcpLogFormat: raw.dhcp_log_format,
        dhcpServer: raw.dhcp_server,
        dhcpServerHostKey: raw.dhcp_server_host_key ?? null,
        fog: {
          server: raw.fog.server.endsWith("/") ? raw.fog.server : `${raw.fog.server}/`,
          apiKey,
          userKey,
          imageId: raw.fog.image_id,
          pollSeconds: raw.fog.poll_interval,
          imagingTimeoutSeconds: raw.fog.imaging_timeout,
          requestTimeoutSeconds: raw.fog.request_timeout,
        },
        pod: {
          bootTimeoutSeconds: raw.pod.boot_timeout,
          installTimeoutSeconds: raw.pod.install_timeout,
          diskSizeGB: raw.pod.disk_size,
          remoteDir: raw.pod.remote_dir,
          libvirtUri: raw.pod.libvirt_uri,
        },
        loggingDir: resolveConfigPath(dir, raw.logging_dir),
        scenario: raw.scenario,
        hypervisor: { networks, vms },
        inventory,
        vpn,
      };
      return config;
    });
  }

  inventory(file: string, from: Reference): Promise<Inventory> {
    return this.#once("inventory", file, async () => {
      const raw = parseWith(inventorySchema, await readYamlFile(file, from), file);
      const dir = dirname(file);
      const issues: Issue[] = [];
      const hosts: InventoryHost[] = [];
      for (const [resourceId, entry] of Object.entries(raw)) {
        hosts.push({
          resourceId,
          name: entry.name,
          address: entry.address ?? null,
          power: entry.power
            ? await powerOverride(entry.power, dir, `${resourceId}.power`, issues, this.#policy)
            : null,
        });
      }
      throwIfIssues(file, issues);
      return { file, hosts };
    });
  }

  /** The template must be readable now; rendering it is the provisioning step's business. */
  async #template(file: string, value: string): Promise<string> {
    const template = resolveConfigPath(dirname(file), value);
    await readTextFile(template, { file, field: "jinja-template" });
    return template;
  }

  networks(file: string, from: Reference): Promise<NetworkFile> {
    return this.#once("networks", file, async () => {
      const raw = parseWith(networkFileSchema, await readYamlFile(file, from), file);
      return {
        file,
        template: await this.#template(file, raw["jinja-template"]),
        networks: raw.networks.map((net) => ({
          name: net.name,
          brName: net.brName,
          brAddr: net.brAddr,
          cidr: net.cidr,
          netmask: net.netmask,
          dhcp: {
            used: net.dhcp.used,
            rangeStart: net.dhcp.rangeStart ?? null,
            rangeEnd: net.dhcp.rangeEnd ?? null,
          },
          forward: { used: net.forward.used, type: net.forward.type ?? null },
        })),
      };
    });
  }

  domains(file: string, from: Reference): Promise<DomainFile> {
    return this.#once("domains", file, async () => {
      const raw = parseWith(domainFileSchema, await readYamlFile(file, from), file);
      return {
        file,
        template: await this.#template(file, raw["jinja-template"]),
        domains: raw.domains.map((domain) => ({
          name: domain.name,
          disk: domain.disk,
          memory: domain.memory,
          vcpus: domain.vcpus,
          interfaces: domain.interfaces.map((i) => ({ name: i.name, type: i.type })),
          iso: {
            used: domain.iso.used,
            url: domain.iso.URL ?? null,
            location: domain.iso.location ?? null,
            sha256: domain.iso.sha256 ?? null,
          },
        })),
      };
    });
  }

  vpn(file: string, from: Reference): Promise<VpnConfig> {
    return this.#once("vpn", file, async () => {
      const aliased = applyAliases(await readYamlFile(file, from), VPN_ALIASES);
      const raw = parseWith(vpnSchema, aliased.data, file, aliased.issues);
      const dir = dirname(file);
      const issues: Issue[] = [];
      const pass = await secretField(
        raw.authentication.pass,
        dir,
        "authentication.pass",
        issues,
        this.#policy,
      );
      const ldap = await ldapConnection(raw.ldap ?? null, raw.server, file, issues);
      throwIfIssues(file, issues);
      return {
        file,
        server: raw.server,
        authentication: { user: raw.authentication.user, pass },
        directory: { root: raw.directory.root, user: raw.directory.user },
        user: { objects: raw.user.objects },
        database: resolveConfigPath(dir, raw.database),
        permanentUsers: raw.permanent_users ?? [],
        ldap,
      };
    });
  }
}

/** `jobs:` is the jobs API's section: required with `dashboard_api: jobs`, refused without. */
function jobsApiIssues(raw: Pick<RawPharos, "dashboard_api" | "jobs">): Issue[] {
  if (raw.dashboard_api === "jobs" && !raw.jobs) {
    return [
      {
        path: "jobs",
        message:
          "required when dashboard_api is jobs: the lab's name on the dashboard (lab) and its images (images)",
      },
    ];
  }
  if (raw.dashboard_api !== "jobs" && raw.jobs) {
    return [
      {
        path: "jobs",
        message: `is for the jobs API: set dashboard_api: jobs, or remove it (dashboard_api is ${raw.dashboard_api})`,
      },
    ];
  }
  return [];
}

/** A domain interface of type network must name a network the installer defines. */
function unknownNetworks(networks: NetworkFile, vms: DomainFile): Issue[] {
  const defined = new Set(networks.networks.map((n) => n.name));
  const issues: Issue[] = [];
  vms.domains.forEach((domain, d) => {
    domain.interfaces.forEach((iface, i) => {
      if (iface.type === "network" && !defined.has(iface.name)) {
        issues.push({
          path: "hypervisor_config",
          message: `${displayPath(vms.file)}: domains[${d}].interfaces[${i}]: network ${iface.name} is not defined in ${displayPath(networks.file)}`,
        });
      }
    });
  });
  return issues;
}

/**
 * Without a lab-wide power section, a host that has power settings must carry its own key
 * (the other fields have defaults).
 */
function requireOwnPowerKeys(pharosFile: string, inventories: readonly Inventory[]): void {
  for (const inventory of new Set(inventories)) {
    const issues = inventory.hosts
      .filter((host) => host.power && !host.power.key)
      .map((host) => ({
        path: `${host.resourceId}.power.key`,
        message: `required: ${displayPath(pharosFile)} has no lab-wide power section`,
      }));
    throwIfIssues(inventory.file, issues);
  }
}

/**
 * The watcher's interval when `watch_interval` is not given: the smallest `fog.poll_interval` of
 * the installer configs, which must then be within the bound `watch_interval` itself has.
 */
function watchIntervalOf(file: string, configs: Map<string | null, InstallerConfig>): number {
  const seconds = Math.min(...[...configs.values()].map((c) => c.fog.pollSeconds));
  if (seconds > LONGEST_WATCH_INTERVAL_SECONDS) {
    throw configError(file, [
      {
        path: "watch_interval",
        message: `required: the installers' smallest fog.poll_interval is ${seconds} s, over the watcher's longest interval, ${LONGEST_WATCH_INTERVAL_SECONDS} s (a third of the waits' HeartbeatSeconds)`,
      },
    ]);
  }
  return seconds;
}
