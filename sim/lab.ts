/**
 * A whole simulated lab on loopback: the Pharos dashboard, the FOG server, the bare-metal hosts
 * (an SSH server per host that network-boots into FOG when told to `reboot`, boots the new system
 * when FOG has imaged it, and then runs what the product runs on it) and the lab-side relay (an
 * SSH server that reads the DHCP server's log and forwards logins to the hosts). It writes a copy
 * of the shipped conf/ pointing at them, so the product runs unchanged against it.
 *
 * One host has a static address in the inventory; the others are found the way a lab without
 * static addresses finds them: in the DHCP log, through the relay. The log starts with a stale
 * lease for each of those (an address nothing answers on), as a lab's log holds old leases.
 *
 * Used by the demo, the end-to-end tests and `scripts/sim-lab.ts`.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument, stringify } from "yaml";
import { loadPharosConfig } from "../lib/config/load";
import { type BareMetalLab, generateClientKey, startBareMetalLab } from "./bare-metal";
import { type DashboardSim, startDashboardSim } from "./dashboard-sim";
import { type FogSim, startFogSim } from "./fog-sim";
import { type JobsDashboardSim, startJobsDashboardSim } from "./jobs-dashboard-sim";
import { dnsmasqLeaseLines, type RelaySim, startRelaySim } from "./relay-sim";
import type { RunningSlapd } from "./slapd";
import type { TestSmtpServer } from "./smtp";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface SimulatedLabOptions {
  /** Where the lab's config, store and logs go. */
  workDir: string;
  /** How much faster than real time FOG images (default 60). */
  timeScale?: number;
  /**
   * Hosts beyond the shipped inventory's, for runs that keep many bookings going at once: named
   * lab-host-N, dashboard resources 100+N, their addresses found in the DHCP log (default 0).
   */
  extraHosts?: number;
  /** Fixed ports (default: free ones). */
  dashboardPort?: number;
  fogPort?: number;
  sshPort?: number;
  /** Installer configs' fog.poll_interval and fog.imaging_timeout, in seconds. */
  pollInterval?: number;
  imagingTimeout?: number;
  /** pharos.yaml `polling` (polls per second). */
  polling?: number;
  /** Image size in GB for every image (default 16). */
  imageSizeGB?: number;
  /** Dashboard pagination (default: plain list, as upstream). */
  pageSize?: number;
  /** How long the installer started on a host runs (default 3000 ms). */
  installerMs?: number;
  /** Hosts (FOG names) whose installer fails. */
  installerFails?: string[];
  /** From the end of imaging until the host answers SSH (default 300 ms). */
  imagedBootMs?: number;
  /**
   * Up to this many (real) milliseconds more for each imaging's start, boot after imaging and
   * installer run, drawn every time (default 0): events then fall at any moment.
   */
  jitterMs?: number;
  /** Installer configs' pod.boot_timeout and pod.install_timeout, in seconds (60 and 120). */
  bootTimeout?: number;
  installTimeout?: number;
  /**
   * The hand-over's real services (a slapd, an SMTP server). Without them the lab's config has
   * no handover section: bookings end at "ready" without access or message.
   */
  handover?: LabHandover;
  /**
   * Serve the later dashboard's jobs API (sim/jobs-dashboard-sim.ts) instead of the bookings API:
   * pharos.yaml then says `dashboard_api: jobs`, this lab name and image mapping.
   */
  jobs?: LabJobs;
}

export interface LabJobs {
  /** The lab's name on the dashboard (default "sim-lab"). */
  lab?: string;
  /** The dashboard's image id -> FOG image id (default: 3 -> 1, the clean image; 5 -> 2, Fuel's). */
  images?: Record<string, number>;
  /** Which dashboard's booking-end cleanup to play (default "2022"). */
  cleanup?: "2019" | "2022";
}

export interface LabHandover {
  directory: {
    url: string;
    caPem: string;
    adminDn: string;
    adminPassword: string;
    suffix: string;
    usersRdn: string;
    permanentUsers?: string[];
  };
  smtp: { port: number; security: "none" | "starttls" | "tls"; caPem?: string };
  operators?: string[];
  sweepInterval?: number;
}

/** The hand-over settings for a lab using these running servers. */
export function handoverWith(
  slapd: RunningSlapd,
  smtp: TestSmtpServer,
  extra: { permanentUsers?: string[]; operators?: string[] } = {},
): LabHandover {
  return {
    directory: {
      url: slapd.url,
      caPem: slapd.caPem,
      adminDn: slapd.adminDn,
      adminPassword: slapd.adminPassword,
      suffix: slapd.suffix,
      usersRdn: slapd.usersRdn,
      ...(extra.permanentUsers ? { permanentUsers: extra.permanentUsers } : {}),
    },
    smtp: { port: smtp.port, security: "starttls", caPem: smtp.caPem },
    ...(extra.operators ? { operators: extra.operators } : {}),
  };
}

export interface SimulatedLabHost {
  resourceId: string;
  /** FOG name. */
  name: string;
  /** The loopback address the host answers on (given by DHCP unless staticAddress). */
  address: string;
  /** FOG's primary MAC of the host. */
  mac: string;
  /** Whether the written inventory gives the address; otherwise it is found in the DHCP log. */
  staticAddress: boolean;
}

export interface SimulatedLab {
  configPath: string;
  dashboard: DashboardSim;
  /** The jobs API the lab's config points at, when the lab was started with `jobs`. */
  jobsDashboard: JobsDashboardSim | null;
  fog: FogSim;
  hosts: BareMetalLab;
  relay: RelaySim;
  /**
   * The lab network: the MAC of the machine answering at each address (what the relay's
   * neighbour table learns). A test puts another MAC at a host's address to play an impostor.
   */
  wire: Map<string, string>;
  /** Inventory hosts: dashboard resource id, FOG name, simulated address. */
  inventory: SimulatedLabHost[];
  /** Every command a host was asked to run (argv arrays), oldest first. */
  hostCommands(name: string): string[][];
  /** Calls `listener` as FOG completes a deploy to a host (before FOG shows it complete). */
  onDeployed(listener: (hostName: string) => void): void;
  /** Calls `listener` as a freshly imaged host answers SSH. */
  onImagedUp(listener: (hostName: string) => void): void;
  /** Calls `listener` as an installer on a host writes its exit status. */
  onInstallerDone(listener: (hostName: string) => void): void;
  /**
   * Whether a host's reboots reach FOG's imaging client (default true). A host that does not
   * network-boot (PXE off in its firmware, a dead boot ROM) boots its disk again: it answers SSH
   * with its old system and FOG's task waits for it.
   */
  setNetworkBoot(hostName: string, boots: boolean): void;
  close(): Promise<void>;
}

const shippedPharos = join(repoRoot, "conf", "pharos.yaml");

/** Secrets of the lab's own, as an operator makes them: the shipped examples are refused at start. */
interface LabSecrets {
  dashboardToken: string;
  fogApiToken: string;
  fogUserToken: string;
  ldapPass: string;
}

export async function startSimulatedLab(options: SimulatedLabOptions): Promise<SimulatedLab> {
  // The shipped conf/ is read for its layout only; the lab's config gets secrets of its own.
  const shipped = await loadPharosConfig(shippedPharos, { allowExampleSecrets: true });
  const secrets: LabSecrets = {
    dashboardToken: randomBytes(20).toString("hex"),
    fogApiToken: randomBytes(24).toString("base64url"),
    fogUserToken: randomBytes(24).toString("base64url"),
    ldapPass: randomBytes(18).toString("base64url"),
  };
  const last = shipped.inventory.hosts.length - 1;
  const extra = Array.from({ length: options.extraHosts ?? 0 }, (_, n) => ({
    resourceId: String(100 + n + 1),
    name: `lab-host-${n + 1}`,
  }));
  const inventory: SimulatedLabHost[] = [...shipped.inventory.hosts, ...extra].map(
    (host, index) => ({
      resourceId: host.resourceId,
      name: host.name,
      address: `127.0.1.${11 + index}`,
      mac: `52:54:00:00:00:${(index + 1).toString(16).padStart(2, "0")}`,
      // The last host keeps a static address, as in the shipped inventory.
      staticAddress: index === last,
    }),
  );
  const installers = [...shipped.defaultConfigs.values()];
  const anyInstaller = installers[0]!;
  const clientKey = generateClientKey();
  const relayKey = generateClientKey();
  const installerFails = new Set(options.installerFails ?? []);
  for (const name of installerFails) {
    if (!inventory.some((host) => host.name === name)) throw new Error(`no lab host ${name}`);
  }

  const wire = new Map(inventory.map((host) => [host.address, host.mac]));
  const relay = await startRelaySim({
    user: shipped.relay?.user ?? "laas",
    authorizedKey: relayKey.publicKey,
    dhcpLogPath: anyInstaller.dhcpLog,
    dhcpFormat: anyInstaller.dhcpLogFormat === "syslog" ? "syslog" : "dnsmasq-leases",
    // The machine at each host's address is that host (impostors are set up by tests).
    macAt: (address) => wire.get(address) ?? null,
  });
  const lease = (host: SimulatedLabHost, address: string, at: Date) => {
    if (anyInstaller.dhcpLogFormat === "syslog") {
      const lines = dnsmasqLeaseLines({ at, address, mac: host.mac, hostName: host.name });
      for (const line of lines) relay.appendDhcpLog(line);
      return;
    }
    const expiresAt = new Date(at.getTime() + 12 * 3600_000);
    relay.setLease({ mac: host.mac, address, hostName: host.name, expiresAt });
  };
  inventory.forEach((host, index) => {
    if (!host.staticAddress)
      lease(host, `127.0.2.${11 + index}`, new Date(Date.now() - 86_400_000));
  });
  // The hosts need FOG (network boot) and FOG the hosts (deploy done): tied once both exist.
  let hostsRef: BareMetalLab | null = null;
  const noNetworkBoot = new Set<string>();
  const deployedListeners: ((hostName: string) => void)[] = [];
  const upListeners: ((hostName: string) => void)[] = [];
  const installerListeners: ((hostName: string) => void)[] = [];

  const fog = await startFogSim({
    ...(options.fogPort !== undefined ? { port: options.fogPort } : {}),
    apiToken: secrets.fogApiToken,
    userToken: secrets.fogUserToken,
    timeScale: options.timeScale ?? 60,
    ...(options.jitterMs !== undefined
      ? { startJitterSeconds: (options.jitterMs / 1000) * (options.timeScale ?? 60) }
      : {}),
    hosts: inventory.map((host) => ({ name: host.name, mac: host.mac, ip: host.address })),
    images: [...new Set(installers.map((c) => c.fog.imageId))].map((id) => ({
      id,
      name: `image-${id}`,
      sizeGB: options.imageSizeGB ?? 16,
    })),
    onDeployed: (name) => {
      hostsRef?.reimage(name);
      for (const listener of deployedListeners) listener(name);
    },
  });
  const hosts = await startBareMetalLab({
    hosts: inventory.map((h) => ({
      name: h.name,
      address: h.address,
      ...(installerFails.has(h.name) ? { installerFails: true } : {}),
    })),
    ...(options.sshPort !== undefined ? { port: options.sshPort } : {}),
    authorizedKey: clientKey.publicKey,
    onReboot: (name) => {
      if (!noNetworkBoot.has(name)) fog.networkBoot(name);
    },
    onBoot: (name) => {
      const host = inventory.find((h) => h.name === name);
      if (host) lease(host, host.address, new Date());
    },
    ...(options.imagedBootMs !== undefined ? { imagedBootMs: options.imagedBootMs } : {}),
    onImagedUp: (name) => {
      for (const listener of upListeners) listener(name);
    },
    onInstallerDone: (name) => {
      for (const listener of installerListeners) listener(name);
    },
    ...(options.installerMs !== undefined ? { installerMs: options.installerMs } : {}),
    ...(options.jitterMs !== undefined ? { jitterMs: options.jitterMs } : {}),
  });
  hostsRef = hosts;
  const dashboard = await startDashboardSim({
    ...(options.dashboardPort !== undefined ? { port: options.dashboardPort } : {}),
    token: secrets.dashboardToken,
    // The lab's resources exist on the dashboard whether or not anyone books them.
    resources: inventory.map((h) => ({ id: Number(h.resourceId), name: h.name })),
    ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
  });

  const jobsDashboard = options.jobs
    ? await startJobsDashboardSim({
        lab: options.jobs.lab ?? "sim-lab",
        token: secrets.dashboardToken,
        cleanup: options.jobs.cleanup ?? "2022",
      })
    : null;
  const configPath = await writeLabConfig(options, {
    dashboard: jobsDashboard?.url ?? dashboard.url,
    fog: fog.url,
    sshPort: hosts.port,
    privateKey: clientKey.privateKey,
    relay,
    relayUser: shipped.relay?.user ?? "laas",
    relayPrivateKey: relayKey.privateKey,
    inventory,
    secrets,
  });
  return {
    configPath,
    wire,
    dashboard,
    jobsDashboard,
    fog,
    hosts,
    relay,
    inventory,
    hostCommands: (name) => hosts.hostCommands(name),
    onDeployed: (listener) => {
      deployedListeners.push(listener);
    },
    onImagedUp: (listener) => {
      upListeners.push(listener);
    },
    onInstallerDone: (listener) => {
      installerListeners.push(listener);
    },
    setNetworkBoot: (name, boots) => {
      if (!inventory.some((host) => host.name === name)) throw new Error(`no lab host ${name}`);
      if (boots) noNetworkBoot.delete(name);
      else noNetworkBoot.add(name);
    },
    close: async () => {
      await Promise.allSettled([
        dashboard.close(),
        jobsDashboard?.close(),
        fog.close(),
        hosts.close(),
        relay.close(),
      ]);
    },
  };
}

interface Endpoints {
  dashboard: string;
  fog: string;
  sshPort: number;
  privateKey: string;
  relay: RelaySim;
  relayUser: string;
  relayPrivateKey: string;
  inventory: SimulatedLabHost[];
  secrets: LabSecrets;
}

/** Copies conf/ into workDir/conf, pointing it at the simulators. */
async function writeLabConfig(options: SimulatedLabOptions, at: Endpoints): Promise<string> {
  const conf = join(options.workDir, "conf");
  await mkdir(join(conf, "secrets"), { recursive: true });
  const shippedConf = join(repoRoot, "conf");
  const edit = async (file: string, change: (doc: ReturnType<typeof parseDocument>) => void) => {
    const doc = parseDocument(await readFile(join(shippedConf, file), "utf8"));
    change(doc);
    await writeFile(join(conf, file), doc.toString());
  };
  const database = join(options.workDir, "db");
  const logs = join(options.workDir, "log");

  await edit("pharos.yaml", (doc) => {
    doc.set("dashboard", at.dashboard);
    if (options.jobs) {
      doc.set("dashboard_api", "jobs");
      doc.set(
        "jobs",
        doc.createNode({
          lab: options.jobs.lab ?? "sim-lab",
          images: options.jobs.images ?? { 3: 1, 5: 2 },
        }),
      );
    }
    doc.set("database", database);
    doc.set("logging_dir", logs);
    if (options.polling !== undefined) doc.set("polling", options.polling);
    doc.setIn(["power", "port"], at.sshPort);
    doc.setIn(["power", "key"], "./secrets/power_id_ed25519");
    doc.setIn(["power", "timeout"], 10);
    // The simulated hosts answer on loopback addresses.
    doc.set("lab_subnets", doc.createNode(["127.0.0.0/8"]));
    doc.set(
      "relay",
      doc.createNode({
        host: at.relay.address,
        port: at.relay.port,
        user: at.relayUser,
        key: "./secrets/relay_id_ed25519",
        host_key: at.relay.hostKeyFingerprint,
        timeout: 10,
      }),
    );
    const handover = options.handover;
    if (!handover) {
      doc.delete("handover");
      return;
    }
    doc.setIn(
      ["handover", "email"],
      doc.createNode({
        host: "127.0.0.1",
        port: handover.smtp.port,
        security: handover.smtp.security,
        ...(handover.smtp.caPem ? { ca: "./secrets/smtp-ca.pem" } : {}),
        from: "LaaS <laas@lab.example.org>",
        operators: handover.operators ?? ["lab-ops@lab.example.org"],
        timeout: 10,
      }),
    );
    if (handover.sweepInterval !== undefined) {
      doc.setIn(["handover", "sweep_interval"], handover.sweepInterval);
    }
  });
  for (const file of ["fuel.yaml", "joid.yaml", "compass.yaml", "none.yaml"]) {
    await edit(file, (doc) => {
      doc.setIn(["fog", "server"], at.fog);
      doc.set("database", database);
      doc.set("logging_dir", logs);
      doc.setIn(["fog", "poll_interval"], options.pollInterval ?? 1);
      doc.setIn(["fog", "imaging_timeout"], options.imagingTimeout ?? 300);
      // The DHCP server's log is read on the relay.
      doc.set("dhcp_log", at.relay.dhcpLogPath);
      doc.set("dhcp_server", null);
      doc.delete("dhcp_server_host_key");
      doc.set(
        "pod",
        doc.createNode({
          boot_timeout: options.bootTimeout ?? 60,
          install_timeout: options.installTimeout ?? 120,
          remote_dir: "/var/lib/laas",
          libvirt_uri: "qemu:///system",
          disk_size: 10,
        }),
      );
    });
  }
  for (const file of ["network.yaml", "domain.yaml"]) {
    await edit(file, (doc) => {
      const template = String(doc.get("jinja-template"));
      doc.set("jinja-template", resolve(shippedConf, template));
    });
  }
  const directory = options.handover?.directory;
  await edit("vpn.yaml", (doc) => {
    // One store per lab: every config names the same database.
    doc.set("database", database);
    if (!directory) return;
    doc.setIn(["authentication", "user"], directory.adminDn);
    doc.setIn(["directory", "root"], directory.suffix);
    doc.setIn(["directory", "user"], directory.usersRdn);
    doc.setIn(["ldap", "url"], directory.url);
    doc.setIn(["ldap", "ca"], "./secrets/ldap-ca.pem");
    doc.set("permanent_users", directory.permanentUsers ?? ["admin"]);
  });
  const inventory = Object.fromEntries(
    at.inventory.map((h) => [
      h.resourceId,
      h.staticAddress ? { name: h.name, address: h.address } : { name: h.name },
    ]),
  );
  await writeFile(join(conf, "inventory.yaml"), stringify(inventory));
  for (const [file, value] of [
    ["dashboard-token", at.secrets.dashboardToken],
    ["fog-api-key", at.secrets.fogApiToken],
    ["fog-user-key", at.secrets.fogUserToken],
    ["ldap-pass", at.secrets.ldapPass],
  ] as const) {
    await writeFile(join(conf, "secrets", file), value, { mode: 0o600 });
  }
  if (options.handover) {
    // A sealing key of the lab's own, as an operator would make one.
    await writeFile(join(conf, "secrets", "handover-key"), randomBytes(32).toString("base64"));
    await writeFile(join(conf, "secrets", "ldap-pass"), options.handover.directory.adminPassword);
    await writeFile(join(conf, "secrets", "ldap-ca.pem"), options.handover.directory.caPem);
    if (options.handover.smtp.caPem) {
      await writeFile(join(conf, "secrets", "smtp-ca.pem"), options.handover.smtp.caPem);
    }
  }
  for (const [file, key] of [
    ["power_id_ed25519", at.privateKey],
    ["relay_id_ed25519", at.relayPrivateKey],
  ] as const) {
    const keyPath = join(conf, "secrets", file);
    await writeFile(keyPath, key);
    await chmod(keyPath, 0o600);
  }
  return join(conf, "pharos.yaml");
}
