/**
 * Option parsing the commands share: numbers checked where they are read, and the config option
 * with the help text each command deserves and LAAS_CONFIG as its default.
 */
import { InvalidArgumentError, Option } from "commander";

/** A duration in seconds: a number, zero or more (`--drain 0` stops at once). */
export function seconds(value: string): number {
  const parsed = Number(value);
  if (value.trim() === "" || !Number.isFinite(parsed) || parsed < 0) {
    throw new InvalidArgumentError(`expected a number of seconds (0 or more), not "${value}".`);
  }
  return parsed;
}

/** A period in seconds: a number above zero (`status --watch 0` would never pause). */
export function positiveSeconds(value: string): number {
  const parsed = seconds(value);
  if (parsed === 0)
    throw new InvalidArgumentError(`expected a number of seconds above 0, not "${value}".`);
  return parsed;
}

/** A TCP port: an integer 1–65535 (0, "abc" or 70000 are refused, not read as a default). */
export function tcpPort(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value.trim()) || parsed < 1 || parsed > 65535) {
    throw new InvalidArgumentError(`expected a port number (1-65535), not "${value}".`);
  }
  return parsed;
}

export const DEFAULT_CONFIG = "conf/pharos.yaml";

/**
 * `-c, --config`: the lab config, or for the commands that accept one (deploy, reset-db, as the
 * original scripts did) an installer config. LAAS_CONFIG is the default when set, as for the
 * serverless functions.
 */
export function configOption(what: "lab" | "lab or installer"): Option {
  const description =
    what === "lab"
      ? "lab config (pharos.yaml)"
      : "lab config (pharos.yaml), or an installer config (e.g. conf/fuel.yaml)";
  return new Option("-c, --config <file>", description).env("LAAS_CONFIG").default(DEFAULT_CONFIG);
}
