/**
 * Secrets kept in a secret store instead of the config: a secret field written
 * `ssm:/laas/prod/ldap-pass` names an SSM parameter (a SecureString, read decrypted), and
 * `secretsmanager:laas/prod/relay-key` a Secrets Manager secret (its SecretString), by name or
 * by full ARN (docs/configuration.md, "Secrets"). This module decides what a reference is; the
 * AWS adapter (lib/adapters/aws/secret-store.ts) fetches it. The adapter, and with it Powertools
 * and the AWS SDK clients, is imported only when a config holds a reference: one-machine use and
 * cold starts without references never load them.
 *
 * A reference is not a secret, so messages show it. A value that starts with one of the
 * prefixes but is no valid name is an error, and is not shown (it may be a secret that happens
 * to start so).
 */

export type SecretStoreKind = "ssm" | "secretsmanager";

export interface SecretStoreReference {
  kind: SecretStoreKind;
  /** The parameter name, or the secret's name or ARN, as the store is asked for it. */
  name: string;
  /** The reference as written (`ssm:/laas/prod/ldap-pass`), shown in messages. */
  text: string;
}

export const SSM_PREFIX = "ssm:";
export const SECRETS_MANAGER_PREFIX = "secretsmanager:";

/** Longest SSM parameter name (2048 with the ARN around it, 1011 for the name). */
const LONGEST_SSM_NAME = 1011;
/** Parameter hierarchies have at most fifteen levels. */
const DEEPEST_SSM_HIERARCHY = 15;
const LONGEST_SECRET_NAME = 512;

const SSM_NAME = /^[A-Za-z0-9_.\-/]+$/;
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]+$/;
const SECRET_ARN =
  /^arn:aws(?:-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;

function ssmNameProblem(name: string): string | null {
  if (name.length === 0) return "names no parameter";
  if (name.length > LONGEST_SSM_NAME) return `is longer than ${LONGEST_SSM_NAME} characters`;
  if (!SSM_NAME.test(name)) return "may hold only letters, digits and _ . - /";
  if (!name.includes("/")) return null;
  if (!name.startsWith("/")) return "is a hierarchy: it must start with /";
  const levels = name.slice(1).split("/");
  if (levels.some((level) => level === "")) return "has an empty level (// or a trailing /)";
  if (levels.length > DEEPEST_SSM_HIERARCHY) {
    return `is deeper than ${DEEPEST_SSM_HIERARCHY} levels`;
  }
  return null;
}

function secretNameProblem(name: string): string | null {
  if (name.length === 0) return "names no secret";
  if (name.startsWith("arn:")) {
    return SECRET_ARN.test(name)
      ? null
      : "is no Secrets Manager ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)";
  }
  if (name.length > LONGEST_SECRET_NAME) return `is longer than ${LONGEST_SECRET_NAME} characters`;
  if (!SECRET_NAME.test(name)) return "may hold only letters, digits and / _ + = . @ -";
  return null;
}

/**
 * The reference a secret field's value is, if it starts with `ssm:` or `secretsmanager:`
 * (exactly: case and spacing count); `null` for any other value, which is read as before.
 */
export function secretStoreReference(
  value: string,
): SecretStoreReference | { problem: string } | null {
  const kind: SecretStoreKind | null = value.startsWith(SSM_PREFIX)
    ? "ssm"
    : value.startsWith(SECRETS_MANAGER_PREFIX)
      ? "secretsmanager"
      : null;
  if (kind === null) return null;
  const prefix = kind === "ssm" ? SSM_PREFIX : SECRETS_MANAGER_PREFIX;
  const name = value.slice(prefix.length);
  const problem = kind === "ssm" ? ssmNameProblem(name) : secretNameProblem(name);
  if (problem !== null) {
    const what = kind === "ssm" ? "SSM parameter" : "Secrets Manager secret";
    return {
      problem: `starts with "${prefix}" but is no valid ${what} reference: the name ${problem} (the value is not repeated here)`,
    };
  }
  return { kind, name, text: value };
}

/** What the store answered for one reference; a problem never holds a value. */
export type FetchOutcome =
  | { ok: true; value: string }
  /** transient: may succeed if tried again (throttling, network); otherwise a config problem. */
  | { ok: false; transient: boolean; problem: string };

/** What lib/adapters/aws/secret-store.ts provides. */
export interface SecretStoreAdapter {
  fetch(reference: SecretStoreReference): Promise<FetchOutcome>;
  /** Drops the clients and the cached values: the next fetch asks the store again. */
  forget(): void;
}

let adapter: Promise<SecretStoreAdapter> | null = null;

function loadAdapter(): Promise<SecretStoreAdapter> {
  // The one place lib/config reaches into an adapter, and only on demand: which store a
  // reference names is the config's business, how it is fetched the adapter's.
  adapter ??= import("../adapters/aws/secret-store").then((module) => module.awsSecretStore);
  return adapter;
}

/** Fetches a reference's value (cached while the process lives; see the adapter). */
export async function fetchSecretReference(reference: SecretStoreReference): Promise<FetchOutcome> {
  return (await loadAdapter()).fetch(reference);
}

/**
 * Forgets every fetched value and the clients, so that the next load asks the store again with
 * the environment as it is then. Does not load the adapter when nothing was fetched.
 */
export async function forgetFetchedSecrets(): Promise<void> {
  if (adapter) (await adapter).forget();
}
