/**
 * A whole simulated lab on loopback: the Pharos dashboard, the FOG server and the bare-metal
 * hosts (an SSH server per host that network-boots into FOG when told to `reboot`). It writes a
 * copy of the shipped conf/ pointing at them, so the product runs unchanged against it.
 *
 * Used by the demo, the end-to-end tests and `scripts/sim-lab.ts`.
 */
import { chmod, copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument, stringify } from "yaml";
import { loadPharosConfig } from "../../lib/config/load";
import { type BareMetalLab, generateClientKey, startBareMetalLab } from "./bare-metal";
import { type DashboardSim, startDashboardSim } from "./dashboard-sim";
import { type FogSim, startFogSim } from "./fog-sim";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface SimulatedLabOptions {
  /** Where the lab's config, store and logs go. */
  workDir: string;
  /** How much faster than real time FOG images (default 60). */
  timeScale?: number;
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
}

export interface SimulatedLab {
  configPath: string;
  dashboard: DashboardSim;
  fog: FogSim;
  hosts: BareMetalLab;
  /** Inventory hosts: dashboard resource id, FOG name, simulated address. */
  inventory: { resourceId: string; name: string; address: string }[];
  close(): Promise<void>;
}

const shippedPharos = join(repoRoot, "conf", "pharos.yaml");

export async function startSimulatedLab(options: SimulatedLabOptions): Promise<SimulatedLab> {
  const shipped = await loadPharosConfig(shippedPharos);
  const inventory = shipped.inventory.hosts.map((host, index) => ({
    resourceId: host.resourceId,
    name: host.name,
    address: `127.0.1.${11 + index}`,
  }));
  const installers = [...shipped.defaultConfigs.values()];
  const anyInstaller = installers[0]!;
  const clientKey = generateClientKey();

  const fog = await startFogSim({
    ...(options.fogPort !== undefined ? { port: options.fogPort } : {}),
    apiToken: anyInstaller.fog.apiKey.reveal(),
    userToken: anyInstaller.fog.userKey.reveal(),
    timeScale: options.timeScale ?? 60,
    hosts: inventory.map((host, index) => ({
      name: host.name,
      mac: `52:54:00:00:00:${(index + 1).toString(16).padStart(2, "0")}`,
      ip: host.address,
    })),
    images: [...new Set(installers.map((c) => c.fog.imageId))].map((id) => ({
      id,
      name: `image-${id}`,
      sizeGB: options.imageSizeGB ?? 16,
    })),
  });
  const hosts = await startBareMetalLab({
    hosts: inventory.map((h) => ({ name: h.name, address: h.address })),
    ...(options.sshPort !== undefined ? { port: options.sshPort } : {}),
    authorizedKey: clientKey.publicKey,
    onReboot: (name) => {
      fog.networkBoot(name);
    },
  });
  const dashboard = await startDashboardSim({
    ...(options.dashboardPort !== undefined ? { port: options.dashboardPort } : {}),
    token: shipped.token.reveal(),
    ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
  });

  const configPath = await writeLabConfig(options, {
    dashboard: dashboard.url,
    fog: fog.url,
    sshPort: hosts.port,
    privateKey: clientKey.privateKey,
    inventory,
  });
  return {
    configPath,
    dashboard,
    fog,
    hosts,
    inventory,
    close: async () => {
      await Promise.allSettled([dashboard.close(), fog.close(), hosts.close()]);
    },
  };
}

interface Endpoints {
  dashboard: string;
  fog: string;
  sshPort: number;
  privateKey: string;
  inventory: { resourceId: string; name: string; address: string }[];
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
    doc.set("database", database);
    doc.set("logging_dir", logs);
    if (options.polling !== undefined) doc.set("polling", options.polling);
    doc.setIn(["power", "port"], at.sshPort);
    doc.setIn(["power", "key"], "./secrets/power_id_ed25519");
    doc.setIn(["power", "timeout"], 10);
  });
  for (const file of ["fuel.yaml", "joid.yaml", "compass.yaml", "none.yaml"]) {
    await edit(file, (doc) => {
      doc.setIn(["fog", "server"], at.fog);
      doc.set("database", database);
      doc.set("logging_dir", logs);
      doc.setIn(["fog", "poll_interval"], options.pollInterval ?? 1);
      doc.setIn(["fog", "imaging_timeout"], options.imagingTimeout ?? 300);
    });
  }
  for (const file of ["network.yaml", "domain.yaml"]) {
    await edit(file, (doc) => {
      const template = String(doc.get("jinja-template"));
      doc.set("jinja-template", resolve(shippedConf, template));
    });
  }
  await copyFile(join(shippedConf, "vpn.yaml"), join(conf, "vpn.yaml"));
  const inventory = Object.fromEntries(
    at.inventory.map((h) => [h.resourceId, { name: h.name, address: h.address }]),
  );
  await writeFile(join(conf, "inventory.yaml"), stringify(inventory));
  for (const secret of [
    "dashboard-token",
    "fog-api-key",
    "fog-user-key",
    "ldap-pass",
    "relay_id_ed25519",
  ]) {
    await copyFile(join(shippedConf, "secrets", secret), join(conf, "secrets", secret));
  }
  const keyPath = join(conf, "secrets", "power_id_ed25519");
  await writeFile(keyPath, at.privateKey);
  await chmod(keyPath, 0o600);
  return join(conf, "pharos.yaml");
}
