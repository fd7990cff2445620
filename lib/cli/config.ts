/**
 * Commands take either the listener's config (pharos.yaml) or, as the original deploy.py and
 * resetDatabase.py did, an installer config (fuel.yaml…). An installer config becomes a lab whose
 * only installer — and clean image — is its own; the lab-wide settings an installer config does
 * not hold (power, relay) come from the pharos.yaml beside it, when there is one.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { loadInstallerConfig, loadPharosConfig } from "../config/load";
import type { InstallerConfig, PharosConfig } from "../config/types";
import { ConfigError } from "../errors";
import { Secret } from "../secret";

export interface LoadedConfig {
  lab: PharosConfig;
  /** The installer config the command was given, or null when it was given pharos.yaml. */
  installer: InstallerConfig | null;
}

export async function loadAnyConfig(path: string): Promise<LoadedConfig> {
  let raw: unknown;
  try {
    raw = parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`${path}: ${(error as Error).message}`);
  }
  if (raw && typeof raw === "object" && "dashboard" in raw) {
    return { lab: await loadPharosConfig(path), installer: null };
  }
  const installer = await loadInstallerConfig(path);
  const besides = join(dirname(path), "pharos.yaml");
  const labWide = existsSync(besides) ? await loadPharosConfig(besides) : null;
  return { lab: labOfOneInstaller(installer, labWide), installer };
}

export function labOfOneInstaller(
  installer: InstallerConfig,
  labWide: Pick<
    PharosConfig,
    | "power"
    | "relay"
    | "defaultConfigs"
    | "handover"
    | "watchSeconds"
    | "labSubnets"
    | "quarantineAfter"
  > | null,
): PharosConfig {
  // The lab's other installers stay known (a reset must remove the pod another one built); the
  // given config serves its own installer and is the clean image.
  const defaultConfigs = new Map(labWide?.defaultConfigs ?? []);
  defaultConfigs.set(installer.installer, installer);
  defaultConfigs.set(null, installer);
  return {
    file: installer.file,
    // Commands given an installer config never talk to the dashboard: the address is inert.
    dashboard: "http://127.0.0.1:9/",
    token: new Secret("", "none"),
    database: installer.database,
    defaultConfigs,
    cleanConfig: installer,
    inventory: installer.inventory,
    loggingDir: installer.loggingDir,
    polling: 0.1,
    watchSeconds: labWide?.watchSeconds ?? installer.fog.pollSeconds,
    quarantineAfter: labWide?.quarantineAfter ?? 2,
    // Without the lab's pharos.yaml no subnet is known, so no host address is reached.
    labSubnets: labWide?.labSubnets ?? [],
    power: labWide?.power ?? null,
    relay: labWide?.relay ?? null,
    handover: labWide?.handover ?? null,
  };
}
