/**
 * Commands take either the listener's config (pharos.yaml) or, as the original deploy.py and
 * resetDatabase.py did, an installer config (fuel.yaml…), told apart by their fields
 * (lib/config/kind.ts). An installer config becomes a lab whose only installer — and clean
 * image — is its own; the lab-wide settings an installer config does not hold (power, relay)
 * come from the pharos.yaml beside it, when there is one. That pharos.yaml's store is the lab's
 * one store: an installer config naming another `database` is refused, never used (a command on
 * another store would not see the bookings holding the lab's hosts).
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { configKind } from "../config/kind";
import { type LoadOptions, loadInstallerConfig, loadPharosConfig } from "../config/load";
import { DEFAULT_BOOKING_RETENTION_DAYS } from "../config/schema";
import type { InstallerConfig, PharosConfig } from "../config/types";
import { readYamlFile } from "../config/yaml-file";
import { Secret } from "../secret";

export interface LoadedConfig {
  lab: PharosConfig;
  /** The installer config the command was given, or null when it was given pharos.yaml. */
  installer: InstallerConfig | null;
}

export async function loadAnyConfig(
  path: string,
  options: LoadOptions = {},
): Promise<LoadedConfig> {
  const file = resolve(path);
  // The same reader as the loaders: a syntax error shows its position and a reason, never the line.
  if (configKind(file, await readYamlFile(file, null)) === "pharos") {
    return { lab: await loadPharosConfig(file, options), installer: null };
  }
  const besides = join(dirname(file), "pharos.yaml");
  const labWide = existsSync(besides) ? await loadPharosConfig(besides, options) : null;
  // The installer config and its VPN file must name the store of the pharos.yaml beside them.
  const labStore = labWide ? { file: labWide.file, database: labWide.database } : undefined;
  const installer = await loadInstallerConfig(file, { ...options, ...(labStore && { labStore }) });
  return { lab: labOfOneInstaller(installer, labWide), installer };
}

export function labOfOneInstaller(
  installer: InstallerConfig,
  labWide: Pick<
    PharosConfig,
    | "database"
    | "power"
    | "relay"
    | "defaultConfigs"
    | "handover"
    | "web"
    | "watchSeconds"
    | "labSubnets"
    | "quarantineAfter"
    | "bookingRetentionDays"
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
    dashboardApi: "bookings",
    token: new Secret("", "none"),
    jobs: null,
    // The lab's store when there is a pharos.yaml (loadAnyConfig made sure it is the same one).
    database: labWide?.database ?? installer.database,
    defaultConfigs,
    cleanConfig: installer,
    inventory: installer.inventory,
    loggingDir: installer.loggingDir,
    polling: 0.1,
    watchSeconds: labWide?.watchSeconds ?? installer.fog.pollSeconds,
    quarantineAfter: labWide?.quarantineAfter ?? 2,
    bookingRetentionDays: labWide?.bookingRetentionDays ?? DEFAULT_BOOKING_RETENTION_DAYS,
    // Without the lab's pharos.yaml no subnet is known, so no host address is reached.
    labSubnets: labWide?.labSubnets ?? [],
    power: labWide?.power ?? null,
    relay: labWide?.relay ?? null,
    handover: labWide?.handover ?? null,
    web: labWide?.web ?? null,
  };
}
