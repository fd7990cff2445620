/**
 * The example secrets shipped in conf/secrets/ make the example configuration load, and are known
 * to everyone who has the source: a lab started with one of them has a dashboard token, FOG keys,
 * an SSH key authorised on its hosts or a sealing key anyone can use. They are refused at start
 * unless the environment says this is the demo or a test (`LAAS_ALLOW_EXAMPLE_SECRETS=1`, set by
 * vitest.config.ts; docs/configuration.md, "Example secrets").
 *
 * Only SHA-256 digests are kept here, never the values, so the check cannot leak them either.
 */
import { createHash } from "node:crypto";
import ssh2 from "ssh2";
import { decodeSealingKey } from "./sealing-key";

/** The environment variable that lets the shipped examples through: the demo and tests only. */
export const ALLOW_EXAMPLE_SECRETS_ENV = "LAAS_ALLOW_EXAMPLE_SECRETS";

export function exampleSecretsAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[ALLOW_EXAMPLE_SECRETS_ENV] === "1";
}

/**
 * SHA-256 of each shipped secret file's text without leading and trailing whitespace, as a file
 * or an inline copy (a YAML block scalar keeps a final newline) reads.
 */
const SHIPPED_TEXT_DIGESTS = new Set([
  "e1bbe4aa860b7596a76e44d8d301d234d2534e4e7803cd4f61142428b5e08ce8", // dashboard-token
  "ece20da2e9c14046ffda730d79410218062f88974f01bcbd4394a8ff9b2ac874", // fog-api-key
  "3344ff8c7fa0ea39cef729720a3f86d8773a84f8b108af3e6427caf026cf1e25", // fog-user-key
  "adce300f3dc83b2353b8bd69ed44825956052bdb0d05355b13be53ad47935ffa", // handover-key
  "4a7ea6b29ed7e0fd7dab653e636e8fea0ad4a8809c25a95fd0325f28f2e09b87", // ldap-pass
  "6716e9f62a2eed9c2cece6f936a7bbfebe3179942e309ffced8ffc82ff81debd", // power_id_ed25519
  "85f24a4d90dbe22e07773c6edd70ed44113b63bc18286d1d379e318b1cc9ce58", // relay_id_ed25519
]);

/** SHA-256 of the shipped sealing key's 32 bytes: the same key written in hex is refused too. */
const SHIPPED_SEALING_KEY_DIGEST =
  "3ead004e0180bc6be04026a316a5c1d446c2b86358221b83e9cbbd8f2edfbd28";

/**
 * SHA-256 of the public key blobs of the shipped key pairs (the base64 field of the .pub files):
 * the shipped private key rewritten (another comment or format, reflowed lines) is the same key.
 */
const SHIPPED_PUBLIC_KEY_DIGESTS = new Set([
  "a0ea126359efe462f9ace12a163b377f4926beb79df8d2a867403523f7bb19f0", // power_id_ed25519.pub
  "51c505aa00a400b500062c3e042b93d57401b0097f0b90583496fbdc7e413a6c", // relay_id_ed25519.pub
]);

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/** Whether a secret's value is (or is the same key as) one of the shipped examples. */
export function isShippedExample(value: string): boolean {
  if (SHIPPED_TEXT_DIGESTS.has(sha256(value.trim()))) return true;
  const sealing = decodeSealingKey(value);
  if (Buffer.isBuffer(sealing) && sha256(sealing) === SHIPPED_SEALING_KEY_DIGEST) return true;
  if (!value.includes("PRIVATE KEY-----")) return false;
  const parsed = ssh2.utils.parseKey(value);
  if (parsed instanceof Error) return false;
  return SHIPPED_PUBLIC_KEY_DIGESTS.has(sha256(parsed.getPublicSSH()));
}

/** How to make a real secret for a field (by its path in the file). */
function howToReplace(field: string): string {
  if (field === "relay.key") {
    return 'make a key of your own (ssh-keygen -t ed25519 -N "" -C laas-relay -f /etc/laas/relay_id_ed25519), authorise its .pub for the relay user, and point relay.key at it';
  }
  if (field.endsWith("power.key")) {
    return 'make a key of your own (ssh-keygen -t ed25519 -N "" -C laas-power -f /etc/laas/power_id_ed25519), authorise its .pub for root on the hosts, and point power.key at it';
  }
  if (field === "handover.sealing_key") {
    return "make a key of your own (openssl rand -base64 32 > /etc/laas/handover-key) and point handover.sealing_key at it";
  }
  if (field === "token") return "give the API token the dashboard issued for this lab";
  if (field === "fog.api_key") {
    return "give your FOG server's API token, as its FOG settings page shows it";
  }
  if (field === "fog.user_key") return "give the API token of the FOG user LaaS acts as";
  if (field === "authentication.pass") return "give the LDAP admin's own password";
  return "give the real secret";
}

/** The problem with a field that holds a shipped example; the value is never part of it. */
export function shippedExampleProblem(field: string, file: string | null): string {
  const from = file === null ? "" : ` (${file})`;
  return `is an example shipped in conf/secrets/${from}, known to everyone who has the source: ${howToReplace(field)}; keep the file readable by the LaaS user only (chmod 600). (Only the demo and the tests accept the examples, with ${ALLOW_EXAMPLE_SECRETS_ENV}=1.)`;
}
