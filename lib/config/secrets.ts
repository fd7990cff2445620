/**
 * Secrets in config files (FOG keys, dashboard token, LDAP password, SSH private keys, sealing
 * key, SMTP password) may be given inline or as a file, as the seed allows. The rule
 * (docs/configuration.md, "Secrets"):
 * - `{file: path}`, or a value starting with `./`, `../`, `~/` or `file:`, is a path that must be
 *   readable;
 * - a one-line value that contains `/` or starts with `.` or `~` looks like a path: it is one,
 *   and it must be readable too (a mistyped path is an error, never a secret that silently fails
 *   at the remote end);
 * - any other value that names an existing regular file (relative to the config file's
 *   directory) is read from that file;
 * - anything else is the value itself.
 * Before all of these, a value starting with `ssm:` or `secretsmanager:` is a reference to a
 * secret store (secret-store.ts), fetched now.
 * File contents lose trailing whitespace (the newline editors add). No message produced here
 * ever contains the secret value. Paths are shown, except a path that may be a secret given
 * inline by mistake (see `readLookalikePath`).
 */
import { readFile, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { TransientError } from "../errors";
import { Secret } from "../secret";
import { exampleSecretsAllowed, isShippedExample, shippedExampleProblem } from "./examples";
import type { Issue } from "./issues";
import { errorCode, resolveConfigPath } from "./paths";
import {
  fetchSecretReference,
  type SecretStoreReference,
  secretStoreReference,
} from "./secret-store";

/**
 * What a secret field may hold in YAML: the value, a path, a secret store reference
 * (`ssm:/laas/prod/token`), or `{file: path}`.
 */
export type SecretSource = string | { file: string };

export type SecretResult =
  | { ok: true; secret: Secret }
  /** transient: the secret store did not answer (throttled, unreachable); trying again may do. */
  | { ok: false; problem: string; transient?: boolean };

/** What a load accepts beyond the rules above. */
export interface SecretPolicy {
  /** The shipped examples (conf/secrets/) are accepted: the demo and the tests only. */
  allowExamples: boolean;
}

export function defaultSecretPolicy(): SecretPolicy {
  return { allowExamples: exampleSecretsAllowed() };
}

/**
 * Prefixes that only a path starts with: `.` and `~` are in no token alphabet (hex, base64,
 * base64url, Django's tokens), so a value written so is shown in messages as the path it is.
 */
const PATH_PREFIXES = ["./", "../", "~/", "file:"];

/** Longest one-line value taken for a path (PATH_MAX); longer ones are values. */
const LONGEST_PATH = 4096;

/** Whether a bare string is written as a path, and is shown as one in messages. */
export function isExplicitPath(value: string): boolean {
  return PATH_PREFIXES.some((prefix) => value.startsWith(prefix));
}

/**
 * Whether a bare string looks like a path (contains `/`, or starts with `.` or `~`) and so must
 * name a readable file. A value of several lines (an inline PEM key, whose base64 holds `/`),
 * with NUL, or longer than a path can be is never one.
 */
export function looksLikePath(value: string): boolean {
  if (value.length === 0 || value.length > LONGEST_PATH || /[\n\r\0]/.test(value)) return false;
  return value.includes("/") || value.startsWith(".") || value.startsWith("~");
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

/**
 * A value that looks like a path without being written as one (`secrets/token`, `/etc/laas/t`,
 * `.token`). It may instead be a secret given inline by mistake — base64 tokens hold `/` and may
 * start with it — so when nothing is there the message names neither the value nor the path
 * resolved from it. When something is there (a file that cannot be read, a directory) the value
 * is a path beyond doubt, and is shown.
 */
async function readLookalikePath(path: string): Promise<SecretResult> {
  try {
    await stat(path);
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") {
      return {
        ok: false,
        problem: `names no file (${code}): a value that contains "/" or starts with "." or "~" is the path of the secret's file (not repeated here: it may be the secret itself); a secret of that form goes in a file, given as {file: path}`,
      };
    }
  }
  return readSecretFile(path);
}

/** A reference's value, fetched from its store; its source is the reference. */
async function fetchReferenced(reference: SecretStoreReference): Promise<SecretResult> {
  const outcome = await fetchSecretReference(reference);
  if (!outcome.ok) {
    return {
      ok: false,
      problem: `${reference.text}: ${outcome.problem}`,
      transient: outcome.transient,
    };
  }
  return { ok: true, secret: new Secret(outcome.value, reference.text) };
}

/** Resolves one secret field; `baseDir` is the directory of the config file that holds it. */
export async function resolveSecret(source: SecretSource, baseDir: string): Promise<SecretResult> {
  if (typeof source !== "string") {
    return readSecretFile(explicitPath(source.file, baseDir));
  }
  const reference = secretStoreReference(source);
  if (reference !== null) {
    return "problem" in reference
      ? { ok: false, problem: reference.problem }
      : fetchReferenced(reference);
  }
  if (isExplicitPath(source)) return readSecretFile(explicitPath(source, baseDir));
  if (looksLikePath(source)) return readLookalikePath(resolveConfigPath(baseDir, source));
  const file = await bareValueFile(source, baseDir);
  if (file) return readSecretFile(file);
  if (source.trim().length === 0) return { ok: false, problem: "must not be empty" };
  return { ok: true, secret: new Secret(source, "inline") };
}

/**
 * Reads a secret field; a problem becomes an issue (the placeholder is never returned), and so
 * does a shipped example unless the policy accepts them. A secret store that did not answer is
 * no config problem: it throws a TransientError naming the field and the reference.
 */
export async function secretField(
  source: SecretSource,
  dir: string,
  field: string,
  issues: Issue[],
  policy: SecretPolicy,
): Promise<Secret> {
  const result = await resolveSecret(source, dir);
  if (!result.ok) {
    if (result.transient) throw new TransientError(`${field}: ${result.problem}`);
    issues.push({ path: field, message: result.problem });
    return new Secret("", "invalid");
  }
  if (!policy.allowExamples && isShippedExample(result.secret.reveal())) {
    const file = result.secret.source === "inline" ? null : result.secret.source;
    issues.push({ path: field, message: shippedExampleProblem(field, file) });
    return new Secret("", "invalid");
  }
  return result.secret;
}
