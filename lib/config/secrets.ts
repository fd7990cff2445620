/**
 * Secrets in config files (FOG keys, dashboard token, LDAP password, SSH private key) may be
 * given inline or as a file, as the seed allows. The rule (docs/configuration.md, "Secrets"):
 * - `{file: path}`, or a value starting with `/`, `./`, `../`, `~/` or `file:`, is a path that
 *   must be readable;
 * - any other value that names an existing regular file (relative to the config file's
 *   directory) is read from that file;
 * - anything else is the value itself.
 * File contents lose trailing whitespace (the newline editors add). No message produced here
 * ever contains the secret value; only paths, which are not secret.
 */
import { readFile, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Secret } from "../secret";
import type { Issue } from "./issues";
import { errorCode, resolveConfigPath } from "./paths";

/** What a secret field may hold in YAML: the value (or a path), or `{file: path}`. */
export type SecretSource = string | { file: string };

export type SecretResult = { ok: true; secret: Secret } | { ok: false; problem: string };

const PATH_PREFIXES = ["/", "./", "../", "~/", "file:"];

/** Whether a bare string must be taken as a path (and so must be readable). */
export function isExplicitPath(value: string): boolean {
  return PATH_PREFIXES.some((prefix) => value.startsWith(prefix));
}

function explicitPath(value: string, baseDir: string): string {
  if (!value.startsWith("file:")) return resolveConfigPath(baseDir, value);
  const rest = value.slice("file:".length);
  // `file:///abs/path` is a file URL; `file:relative/or/abs` is a plain path after the prefix.
  return rest.startsWith("//") ? fileURLToPath(value) : resolveConfigPath(baseDir, rest);
}

/**
 * The file a bare value names, if it names an existing regular file. Values that cannot be
 * file names (several lines, NUL, very long) are never looked up.
 */
async function bareValueFile(value: string, baseDir: string): Promise<string | null> {
  if (value.length === 0 || value.length > 1024 || /[\n\r\0]/.test(value)) return null;
  const candidate = resolveConfigPath(baseDir, value);
  try {
    return (await stat(candidate)).isFile() ? candidate : null;
  } catch {
    return null;
  }
}

async function readSecretFile(path: string): Promise<SecretResult> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    return { ok: false, problem: `cannot read secret file ${path} (${errorCode(error)})` };
  }
  const value = text.trimEnd();
  if (value.length === 0) return { ok: false, problem: `secret file ${path} is empty` };
  return { ok: true, secret: new Secret(value, path) };
}

/** Resolves one secret field; `baseDir` is the directory of the config file that holds it. */
export async function resolveSecret(source: SecretSource, baseDir: string): Promise<SecretResult> {
  if (typeof source !== "string") {
    return readSecretFile(explicitPath(source.file, baseDir));
  }
  if (isExplicitPath(source)) return readSecretFile(explicitPath(source, baseDir));
  const file = await bareValueFile(source, baseDir);
  if (file) return readSecretFile(file);
  if (source.trim().length === 0) return { ok: false, problem: "must not be empty" };
  return { ok: true, secret: new Secret(source, "inline") };
}

/** Reads a secret field; a problem becomes an issue (the placeholder is never returned). */
export async function secretField(
  source: SecretSource,
  dir: string,
  field: string,
  issues: Issue[],
): Promise<Secret> {
  const result = await resolveSecret(source, dir);
  if (result.ok) return result.secret;
  issues.push({ path: field, message: result.problem });
  return new Secret("", "invalid");
}
