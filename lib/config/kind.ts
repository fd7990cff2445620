/**
 * Which kind of config a file is — the lab's pharos config or an installer config — told by its
 * fields, as a person tells them: `default_configs`, `token`, `polling`… make a pharos config,
 * `fog`, `installer`, `vpn_config`… an installer config. Commands that take either
 * (lib/cli/config.ts) ask this first, so that a pharos config missing one field is reported as the
 * pharos config it is, with that field, rather than as an installer config missing ten.
 */
import type { z } from "zod";
import { ConfigError } from "../errors";
import { displayPath } from "./paths";
import { installerSchema, PHAROS_ALIASES, pharosSchema } from "./schema";

export type ConfigKind = "pharos" | "installer";

const PHAROS_FIELDS = [...Object.keys(pharosSchema.shape), ...Object.keys(PHAROS_ALIASES)];
const INSTALLER_FIELDS = Object.keys(installerSchema.shape);

/** Fields only one kind has: `database`, `inventory` and `logging_dir` are in both. */
const ONLY: Record<ConfigKind, readonly string[]> = {
  pharos: PHAROS_FIELDS.filter((field) => !INSTALLER_FIELDS.includes(field)),
  installer: INSTALLER_FIELDS.filter((field) => !PHAROS_FIELDS.includes(field)),
};

const LABEL: Record<ConfigKind, string> = {
  pharos: "a pharos config",
  installer: "an installer config",
};

function required(shape: Record<string, z.ZodType>): string[] {
  return Object.entries(shape)
    .filter(([, schema]) => !schema.safeParse(undefined).success)
    .map(([field]) => field);
}

const REQUIRED: Record<ConfigKind, readonly string[]> = {
  pharos: required(pharosSchema.shape),
  installer: required(installerSchema.shape),
};

/** The required fields of `kind` the file lacks (a field given by its alias is not lacking). */
function missing(kind: ConfigKind, fields: readonly string[]): string[] {
  const given = new Set(fields);
  if (kind === "pharos") {
    for (const [alias, field] of Object.entries(PHAROS_ALIASES)) {
      if (given.has(alias)) given.add(field);
    }
  }
  return REQUIRED[kind].filter((field) => !given.has(field));
}

const list = (fields: readonly string[]) => (fields.length > 0 ? fields.join(", ") : "nothing");

/**
 * The kind of the config `data` (the parsed YAML of `file`); a ConfigError when its fields do
 * not tell, naming the kind it looks like and what that kind would need. Field names only are
 * shown, never values.
 */
export function configKind(file: string, data: unknown): ConfigKind {
  const name = displayPath(file);
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(
      `${name}: expected a mapping: a pharos config (${ONLY.pharos.join(", ")}) or an installer config (${ONLY.installer.join(", ")})`,
    );
  }
  const fields = Object.keys(data);
  const found = {
    pharos: fields.filter((field) => ONLY.pharos.includes(field)),
    installer: fields.filter((field) => ONLY.installer.includes(field)),
  };
  if (found.pharos.length > 0 && found.installer.length === 0) return "pharos";
  if (found.installer.length > 0 && found.pharos.length === 0) return "installer";
  if (found.pharos.length === 0) {
    throw new ConfigError(
      `${name}: is neither a pharos config (it has none of ${ONLY.pharos.join(", ")}) nor an installer config (none of ${ONLY.installer.join(", ")})`,
    );
  }
  const both = `${name}: has fields of a pharos config (${found.pharos.join(", ")}) and of an installer config (${found.installer.join(", ")})`;
  const lacks = (kind: ConfigKind) => `${LABEL[kind]} lacks ${list(missing(kind, fields))}`;
  if (found.pharos.length === found.installer.length) {
    throw new ConfigError(
      `${both}: it looks as much like one as the other; ${lacks("pharos")}; ${lacks("installer")}`,
    );
  }
  const kind: ConfigKind = found.pharos.length > found.installer.length ? "pharos" : "installer";
  const other: ConfigKind = kind === "pharos" ? "installer" : "pharos";
  throw new ConfigError(
    `${both}: it looks like ${LABEL[kind]}, which lacks ${list(missing(kind, fields))} and has no field ${found[other].join(", ")}`,
  );
}
