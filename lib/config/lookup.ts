/**
 * Questions asked of a loaded configuration: which installer config serves a booking, which
 * inventory entry is a host, how a host is powered.
 */
import { ConfigError } from "../errors";
import { mergedIpmi } from "./ipmi";
import { describeValue } from "./issues";
import { displayPath } from "./paths";
import { isNoInstaller } from "./schema";
import type { InstallerConfig, Inventory, InventoryHost, PharosConfig, PowerConfig } from "./types";

/** Power settings a host gets when neither pharos.yaml nor its inventory entry says otherwise. */
export const POWER_DEFAULTS = {
  type: "ssh",
  user: "root",
  port: 22,
  hostKey: null,
  timeoutSeconds: 30,
} as const satisfies Omit<PowerConfig, "key" | "ipmi">;

/**
 * The installer config for a booking's installer, matched case-insensitively ("Fuel", "fuel").
 * null, "" and "None" (any case) are the no-installer config.
 */
export function installerConfigFor(
  pharos: PharosConfig,
  installer: string | null | undefined,
): InstallerConfig {
  if (isNoInstaller(installer)) return pharos.cleanConfig;
  const wanted = (installer ?? "").trim().toLowerCase();
  for (const [name, config] of pharos.defaultConfigs) {
    if (name !== null && name.toLowerCase() === wanted) return config;
  }
  const known = [...pharos.defaultConfigs.keys()].map((name) => name ?? "null (no installer)");
  throw new ConfigError(
    `${displayPath(pharos.file)}: default_configs: no config for installer ${describeValue(installer)}; known: ${known.join(", ")}`,
  );
}

export function inventoryHostByResource(
  inventory: Inventory,
  resourceId: string | number,
): InventoryHost | null {
  const id = String(resourceId).trim();
  return inventory.hosts.find((host) => host.resourceId === id) ?? null;
}

/** Exact name first; FOG compares host names without regard to case, so that is the fallback. */
export function inventoryHostByName(inventory: Inventory, name: string): InventoryHost | null {
  const exact = inventory.hosts.find((host) => host.name === name);
  if (exact) return exact;
  const lower = name.toLowerCase();
  return inventory.hosts.find((host) => host.name.toLowerCase() === lower) ?? null;
}

function definedOnly<T extends object>(partial: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(partial).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

/**
 * A host's power settings: its inventory entry's over the lab-wide ones of pharos.yaml over the
 * defaults; null when neither pharos.yaml nor the inventory entry has any.
 */
export function powerFor(pharos: PharosConfig, host: InventoryHost): PowerConfig | null {
  if (!pharos.power && !host.power) return null;
  const { ipmi: labIpmi = null, ...lab } = pharos.power ?? {};
  const { ipmi: hostIpmi, ...own } = host.power ?? {};
  const merged = { ...POWER_DEFAULTS, ...lab, ...definedOnly(own) };
  const { key } = merged;
  if (!key) {
    // loadPharosConfig refuses such inventories; this guards hand-built configs.
    throw new ConfigError(
      `inventory host ${host.resourceId} (${host.name}): power.key: required (no lab-wide power in ${displayPath(pharos.file)})`,
    );
  }
  if (merged.type === "ssh") return { ...merged, key, ipmi: null };
  const { ipmi, missing } = mergedIpmi(labIpmi, hostIpmi);
  if (!ipmi) {
    // loadPharosConfig refuses such inventories too (ipmiIssues).
    throw new ConfigError(
      `inventory host ${host.resourceId} (${host.name}): power.ipmi: ${missing.join(", ")} required (its power is ipmi)`,
    );
  }
  return { ...merged, key, ipmi };
}
