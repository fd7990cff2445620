/**
 * One store per lab. pharos.yaml, every installer config and every VPN file name a `database`
 * (the seed's vocabulary), but a lab has one store: the bookings that hold its hosts are in it,
 * and a command working on another store would not see them (`laas deploy` would reimage a host
 * a live booking holds). So every config must name the same database, or the load fails naming
 * both files and both paths (docs/configuration.md, "One store"). Paths are compared resolved,
 * and through symbolic links when both exist.
 */
import { realpath } from "node:fs/promises";
import { ConfigError } from "../errors";
import { displayPath } from "./paths";
import type { InstallerConfig } from "./types";

/** A config file and the store it names. */
export interface StoreOf {
  file: string;
  database: string;
}

async function real(path: string): Promise<string | null> {
  try {
    return await realpath(path);
  } catch {
    return null;
  }
}

export async function sameStore(a: string, b: string): Promise<boolean> {
  if (a === b) return true;
  const [ra, rb] = await Promise.all([real(a), real(b)]);
  return ra !== null && ra === rb;
}

/** One line saying that `other` names another store than `lab`; paths only, nothing secret. */
export function anotherStore(other: StoreOf, lab: StoreOf): string {
  return `${displayPath(other.file)}: database: ${other.database} is another store than ${displayPath(lab.file)}'s database, ${lab.database}: a lab has one store, so every config names the same database`;
}

/**
 * Every installer config given and its VPN file name the store of `lab` — pharos.yaml, or the
 * installer config itself when it is loaded alone. Each is compared with `lab`, so that the one
 * file that differs is the one named; all of them are listed in one error.
 */
export async function requireOneStore(
  lab: StoreOf,
  installers: readonly InstallerConfig[],
): Promise<void> {
  const lines: string[] = [];
  const seen = new Set<string>([lab.file]);
  for (const other of installers.flatMap((config) => [config, config.vpn])) {
    if (seen.has(other.file)) continue;
    seen.add(other.file);
    if (!(await sameStore(other.database, lab.database))) lines.push(anotherStore(other, lab));
  }
  if (lines.length > 0) throw new ConfigError(lines.join("\n"));
}
