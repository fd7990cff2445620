/**
 * A host's BMC settings (`power.ipmi` in pharos.yaml and in inventory entries): read, merged
 * field by field (the lab's shared user and password under each host's address), and checked
 * complete for every host whose power is IPMI.
 */
import type { Secret } from "../secret";
import type { Issue } from "./issues";
import type { RawIpmi } from "./schema";
import { type SecretPolicy, secretField } from "./secrets";
import type { Inventory, IpmiConfig, LabPowerConfig, RelayConfig } from "./types";

/** IPMI 2.0's longest password; ipmitool reads no more of its password file (`-f`). */
const IPMI_PASSWORD_MAX_CHARS = 20;

/** What a BMC gets when neither pharos.yaml nor the host's entry says otherwise. */
export const IPMI_DEFAULTS = {
  port: 623,
  cipherSuite: 3,
  efiBoot: false,
  timeoutSeconds: 60,
} as const satisfies Partial<IpmiConfig>;

/**
 * A password ipmitool would cut (past 20 characters, or at a line break or a tab, where its
 * password file reader stops) fails the login with a password nobody typed: refused here.
 */
function passwordProblem(secret: Secret): string | null {
  const value = secret.reveal();
  const from = secret.source === "inline" ? "" : ` (${secret.source})`;
  if ([...value].length > IPMI_PASSWORD_MAX_CHARS) {
    return `is longer than ${IPMI_PASSWORD_MAX_CHARS} characters${from}, IPMI 2.0's limit`;
  }
  if (/[\r\n\t]/.test(value)) return `holds a line break or a tab${from}`;
  return null;
}

/** Only the fields the mapping gives, so that merging leaves the others to the lab and defaults. */
export async function ipmiFields(
  raw: RawIpmi,
  dir: string,
  field: string,
  issues: Issue[],
  policy: SecretPolicy,
): Promise<Partial<IpmiConfig>> {
  const out: Partial<IpmiConfig> = {};
  if (raw.address !== undefined) out.address = raw.address;
  if (raw.port !== undefined) out.port = raw.port;
  if (raw.user !== undefined) out.user = raw.user;
  if (raw.password !== undefined) {
    const before = issues.length;
    const password = await secretField(raw.password, dir, `${field}.password`, issues, policy);
    const problem = issues.length === before ? passwordProblem(password) : null;
    if (problem) issues.push({ path: `${field}.password`, message: problem });
    out.password = password;
  }
  if (raw.cipher_suite !== undefined) out.cipherSuite = raw.cipher_suite;
  if (raw.efi_boot !== undefined) out.efiBoot = raw.efi_boot;
  if (raw.timeout !== undefined) out.timeoutSeconds = raw.timeout;
  return out;
}

/** The host's fields over the lab's over the defaults; the names of the required ones missing. */
export function mergedIpmi(
  lab: Partial<IpmiConfig> | null,
  host: Partial<IpmiConfig> | undefined,
): { ipmi: IpmiConfig | null; missing: string[] } {
  const merged = { ...IPMI_DEFAULTS, ...definedOnly(lab ?? {}), ...definedOnly(host ?? {}) };
  const { address, user, password } = merged;
  if (address !== undefined && user !== undefined && password !== undefined) {
    return { ipmi: { ...merged, address, user, password }, missing: [] };
  }
  const missing = Object.entries({ address, user, password })
    .filter(([, value]) => value === undefined)
    .map(([name]) => name);
  return { ipmi: null, missing };
}

function definedOnly<T extends object>(partial: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(partial).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

/**
 * Every host whose power is IPMI needs a relay to run ipmitool on and a complete BMC (address,
 * user, password) once its own fields are merged over the lab's: the issues, per file.
 */
export function ipmiIssues(
  pharosFile: string,
  lab: LabPowerConfig | null,
  relay: RelayConfig | null,
  inventories: readonly Inventory[],
): { file: string; issues: Issue[] }[] {
  const found: { file: string; issues: Issue[] }[] = [];
  if (lab?.type === "ipmi" && !relay) {
    const message = "required by power.type ipmi: ipmitool runs on the relay";
    found.push({ file: pharosFile, issues: [{ path: "relay", message }] });
  }
  for (const inventory of new Set(inventories)) {
    const issues: Issue[] = [];
    for (const host of inventory.hosts) {
      if ((host.power?.type ?? lab?.type) !== "ipmi") continue;
      const at = `${host.resourceId}.power`;
      if (!relay && host.power?.type === "ipmi") {
        const message = "ipmi needs a relay (pharos.yaml relay:) to run ipmitool on";
        issues.push({ path: `${at}.type`, message });
      }
      for (const name of mergedIpmi(lab?.ipmi ?? null, host.power?.ipmi).missing) {
        issues.push({ path: `${at}.ipmi.${name}`, message: "required: the host's power is ipmi" });
      }
    }
    if (issues.length > 0) found.push({ file: inventory.file, issues });
  }
  return found;
}
