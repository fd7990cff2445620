/**
 * Which plugin serves a booking's installer. The names are the dashboard's, matched without
 * regard to case, as default_configs does (installerConfigFor); null, "" and "None" mean no
 * installer. An unknown name fails here, before anything on the host is touched.
 */
import { isNoInstaller } from "../config/schema";
import { ConfigError } from "../errors";
import { compassInstaller } from "./compass";
import { fuelInstaller } from "./fuel";
import { joidInstaller } from "./joid";
import { noInstaller } from "./none";
import type { InstallerPlugin } from "./types";

export const INSTALLER_PLUGINS: readonly InstallerPlugin[] = [
  fuelInstaller,
  joidInstaller,
  compassInstaller,
  noInstaller,
];

export function installerPlugin(name: string | null | undefined): InstallerPlugin {
  if (isNoInstaller(name)) return noInstaller;
  const wanted = (name ?? "").trim().toLowerCase();
  const plugin = INSTALLER_PLUGINS.find(
    (candidate) => candidate.name === wanted || candidate.aliases.includes(wanted),
  );
  if (plugin) return plugin;
  const known = INSTALLER_PLUGINS.map((candidate) => candidate.name).join(", ");
  throw new ConfigError(`unknown installer ${JSON.stringify(name)}; known: ${known}`);
}
