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
import { decodeSealingKey } from "./sealing-key";
import { type SecretPolicy, secretField } from "./secrets";
import type { EmailConfig, EndNoticeConfig, HandoverConfig, LdapConnection } from "./types";

export { decodeSealingKey, SEALING_KEY_BYTES } from "./sealing-key";

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
  policy: SecretPolicy,
): Promise<EmailConfig> {
  if ((raw.user == null) !== (raw.pass == null)) {
    issues.push({ path: "handover.email", message: "user and pass go together" });
  }
  return {
    host: raw.host,
    port: raw.port ?? (raw.security === "tls" ? 465 : 25),
    security: raw.security,
    user: raw.user ?? null,
    pass:
      raw.pass == null
        ? null
        : await secretField(raw.pass, dir, "handover.email.pass", issues, policy),
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
  policy: SecretPolicy,
): Promise<HandoverConfig> {
  const dir = dirname(file);
  const before = issues.length;
  let sealingKey = await secretField(raw.sealing_key, dir, "handover.sealing_key", issues, policy);
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
    email: await emailConfig(raw.email, dir, issues, policy),
    sweepSeconds: raw.sweep_interval,
    endNotice: endNoticeConfig(raw.end_notice, issues),
  };
}

/** As the Anuket lab does: two days before the end. */
export const DEFAULT_END_NOTICE_HOURS = 48;

/**
 * The end notice's settings. A booking no longer than the notice's lead would be told of its end
 * as it is handed over, by a hand-over that already says when it ends: by default only bookings a
 * day longer than the lead get one, so that it comes a day after the hand-over at the soonest;
 * and a minimum below the lead is refused, as it would mail such bookings at once.
 */
function endNoticeConfig(raw: RawHandover["end_notice"], issues: Issue[]): EndNoticeConfig | null {
  if (raw === false) return null;
  const beforeHours = raw === true ? DEFAULT_END_NOTICE_HOURS : raw.before_hours;
  const minBookingHours = (raw === true ? undefined : raw.min_booking_hours) ?? beforeHours + 24;
  if (minBookingHours < beforeHours) {
    issues.push({
      path: "handover.end_notice.min_booking_hours",
      message: `${minBookingHours} is below before_hours (${beforeHours}): a booking between the two would be told of its end as soon as it is handed over; make it at least ${beforeHours}`,
    });
  }
  return { beforeHours, minBookingHours };
}
