/**
 * The SSH keys and settings of power and the relay (pharos.yaml `power:` and `relay:`, inventory
 * entries' `power:`): each key must be a private key ssh2 can use, read like any secret.
 */
import ssh2 from "ssh2";
import type { Secret } from "../secret";
import { ipmiFields } from "./ipmi";
import type { Issue } from "./issues";
import type { RawPower, RawPowerOverride, RawRelay } from "./schema";
import { type SecretPolicy, type SecretSource, secretField } from "./secrets";
import type { LabPowerConfig, PowerOverride, RelayConfig } from "./types";

/**
 * A power key must be a private key ssh2 can use without a passphrase. ssh2's own message is
 * not repeated: it is fixed text today, but the check must never echo key material.
 */
function privateKeyProblem(secret: Secret): string | null {
  const parsed = ssh2.utils.parseKey(secret.reveal());
  const from = secret.source === "inline" ? "" : ` (${secret.source})`;
  if (parsed instanceof Error) {
    return /passphrase|encrypted/i.test(parsed.message)
      ? `is an encrypted private key${from}; give one without a passphrase`
      : `is not an OpenSSH or PEM private key${from}`;
  }
  if (!parsed.isPrivateKey()) return `is a public key${from}; give the private key`;
  return null;
}

async function powerKey(
  source: SecretSource,
  dir: string,
  field: string,
  issues: Issue[],
  policy: SecretPolicy,
): Promise<Secret> {
  const before = issues.length;
  const key = await secretField(source, dir, field, issues, policy);
  if (issues.length === before) {
    const problem = privateKeyProblem(key);
    if (problem) issues.push({ path: field, message: problem });
  }
  return key;
}

export async function labPower(
  raw: RawPower,
  dir: string,
  field: string,
  issues: Issue[],
  policy: SecretPolicy,
): Promise<LabPowerConfig> {
  return {
    type: raw.type,
    user: raw.user,
    port: raw.port,
    key: await powerKey(raw.key, dir, `${field}.key`, issues, policy),
    hostKey: raw.host_key,
    timeoutSeconds: raw.timeout,
    ipmi: raw.ipmi ? await ipmiFields(raw.ipmi, dir, `${field}.ipmi`, issues, policy) : null,
  };
}

/** Only the fields the entry gives, so that merging leaves the others to the lab default. */
export async function relayConfig(
  raw: RawRelay,
  dir: string,
  issues: Issue[],
  policy: SecretPolicy,
): Promise<RelayConfig> {
  return {
    host: raw.host,
    port: raw.port,
    user: raw.user,
    key: await powerKey(raw.key, dir, "relay.key", issues, policy),
    hostKey: raw.host_key,
    timeoutSeconds: raw.timeout,
    hostIdentity: raw.host_identity,
  };
}

export async function powerOverride(
  raw: RawPowerOverride,
  dir: string,
  field: string,
  issues: Issue[],
  policy: SecretPolicy,
): Promise<PowerOverride> {
  const out: PowerOverride = {};
  if (raw.type !== undefined) out.type = raw.type;
  if (raw.user !== undefined) out.user = raw.user;
  if (raw.port !== undefined) out.port = raw.port;
  if (raw.key !== undefined) {
    out.key = await powerKey(raw.key, dir, `${field}.key`, issues, policy);
  }
  if (raw.host_key !== undefined) out.hostKey = raw.host_key;
  if (raw.timeout !== undefined) out.timeoutSeconds = raw.timeout;
  if (raw.ipmi !== undefined) {
    out.ipmi = await ipmiFields(raw.ipmi, dir, `${field}.ipmi`, issues, policy);
  }
  return out;
}
