/**
 * The hand-over settings (pharos.yaml `handover:`) and the directory connection (vpn config
 * `ldap:`), both extensions of the seed. Certificates are read here, once, so that a step never
 * finds a missing CA file in the middle of a booking.
 */
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Secret } from "../secret";
import type { Issue } from "./issues";
import { errorCode, resolveConfigPath } from "./paths";
import type { RawHandover, RawVpn } from "./schema";
import { secretField } from "./secrets";
import type { EmailConfig, HandoverConfig, LdapConnection } from "./types";

/** Bytes of the AES-256-GCM key that seals credentials until they are delivered. */
export const SEALING_KEY_BYTES = 32;

/**
 * The sealing key as its file holds it: 64 hex digits or base64 of 32 bytes
 * (`openssl rand -base64 32`). Returns the key bytes, or why the value is not one.
 */
export function decodeSealingKey(value: string): Buffer | string {
  const text = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, "hex");
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, "base64");
  return `must be ${SEALING_KEY_BYTES} bytes as base64 (openssl rand -base64 32) or 64 hex digits`;
}

async function pemFile(
  path: string | null | undefined,
  dir: string,
  field: string,
  issues: Issue[],
): Promise<string | null> {
  if (path == null) return null;
  const file = resolveConfigPath(dir, path);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    issues.push({ path: field, message: `cannot read ${file} (${errorCode(error)})` });
    return null;
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    issues.push({ path: field, message: `${file} holds no PEM certificate` });
    return null;
  }
  return text;
}

export async function ldapConnection(
  raw: RawVpn["ldap"],
  server: string,
  file: string,
  issues: Issue[],
): Promise<LdapConnection> {
  const url = raw?.url ?? `ldap://${server.includes(":") ? `[${server}]` : server}`;
  const secure = url.startsWith("ldaps:");
  if (secure && raw?.start_tls === true) {
    issues.push({
      path: "ldap.start_tls",
      message: "ldaps:// is TLS from the start; StartTLS applies to ldap:// only",
    });
  }
  return {
    url,
    startTls: secure ? false : (raw?.start_tls ?? true),
    caPem: await pemFile(raw?.ca, dirname(file), "ldap.ca", issues),
    verifyCertificate: raw?.verify ?? true,
    timeoutSeconds: raw?.timeout ?? 10,
  };
}

async function emailConfig(
  raw: RawHandover["email"],
  dir: string,
  issues: Issue[],
): Promise<EmailConfig> {
  if ((raw.user == null) !== (raw.pass == null)) {
    issues.push({ path: "handover.email", message: "user and pass go together" });
  }
  return {
    host: raw.host,
    port: raw.port ?? (raw.security === "tls" ? 465 : 25),
    security: raw.security,
    user: raw.user ?? null,
    pass: raw.pass == null ? null : await secretField(raw.pass, dir, "handover.email.pass", issues),
    caPem: await pemFile(raw.ca, dir, "handover.email.ca", issues),
    from: raw.from,
    operators: raw.operators,
    timeoutSeconds: raw.timeout,
  };
}

export async function handoverConfig(
  raw: RawHandover,
  file: string,
  issues: Issue[],
): Promise<HandoverConfig> {
  const dir = dirname(file);
  const before = issues.length;
  let sealingKey = await secretField(raw.sealing_key, dir, "handover.sealing_key", issues);
  if (issues.length === before) {
    const decoded = decodeSealingKey(sealingKey.reveal());
    if (typeof decoded === "string") {
      const from = sealingKey.source === "inline" ? "" : ` (${sealingKey.source})`;
      issues.push({ path: "handover.sealing_key", message: `${decoded}${from}` });
      sealingKey = new Secret("", "invalid");
    }
  }
  return {
    sealingKey,
    vpn: raw.vpn,
    rootPassword: raw.root_password,
    sshKey: raw.ssh_key,
    dashboardNotes: raw.dashboard_notes,
    email: await emailConfig(raw.email, dir, issues),
    sweepSeconds: raw.sweep_interval,
  };
}
