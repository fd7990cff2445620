/**
 * What the jobs API sends for a task's config (reference/dashboard-apis.md §2), as zod schemas,
 * one per task kind, each normalised into the port's Task. Every config carries the task's
 * `lab_token`; it is taken out here, so no config handed on holds it. A config is checked on its
 * own, so that one malformed task never hides the others.
 */
import { z } from "zod";
import type { NetworkTask, Task, TaskKind } from "../../ports/jobs-dashboard";

/**
 * A lab id (host, image): a CharField on the dashboard, but some are numbers in JSON. Both are
 * kept as their text.
 */
const labId = z
  .union([z.string().trim().min(1, "may not be blank"), z.int().nonnegative()])
  .transform(String);

/** Blank, null and absent all mean "not given". */
const optionalText = z
  .string()
  .nullish()
  .transform((value) => {
    const text = value?.trim() ?? "";
    return text === "" ? null : text;
  });

/** A JSON boolean in the 2019 dashboard, the text "True"/"False" (Python's str()) in the 2022 one. */
const pythonBoolean = z
  .union([z.boolean(), z.enum(["True", "False"])], 'expected a boolean or "True"/"False"')
  .transform((value) => value === true || value === "True");

/**
 * The task's `lab_token` as the dashboard renders it: what the lab last posted, or the model's
 * default, the text "null", when it never posted one.
 */
const labToken = z
  .string()
  .nullish()
  .transform((value) => (value == null || value === "" || value === "null" ? null : value));

const mac = z
  .string()
  .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i, "expected a MAC address")
  .transform((value) => value.toLowerCase());

const hardwareSchema = z.object({
  id: labId,
  image: labId.nullish().transform((value) => value ?? null),
  hostname: optionalText,
  power: z.enum(["on", "off"]),
  ipmi_create: pythonBoolean.optional().transform((value) => value ?? false),
});

const vlanSchema = z.object({ vlan_id: z.int().min(0).max(4095), tagged: z.boolean() });
const hostInterfacesSchema = z.record(mac, z.array(vlanSchema));

const accessSchema = z.object({
  access_type: z.enum(["vpn", "ssh"]),
  user: labId,
  revoke: pythonBoolean.optional().transform((value) => value ?? false),
  context: z
    .object({ key: optionalText, hosts: z.array(labId).nullish() })
    .nullish()
    .transform((context) => ({ key: context?.key ?? null, hosts: context?.hosts ?? [] })),
});

/** Roles as the dashboard renders them: one `{<host lab id>: <role name>}` object per host. */
const rolesSchema = z.array(z.record(z.string().min(1), z.string()));

const softwareSchema = z.object({
  opnfv: z.object({
    installer: optionalText,
    scenario: optionalText,
    pdf: optionalText,
    idf: optionalText,
    roles: rolesSchema.nullish(),
  }),
});

const snapshotSchema = z.object({
  host: labId.nullish().transform((value) => value ?? null),
  image: labId.nullish().transform((value) => value ?? null),
  dashboard_id: z.int().nonnegative(),
});

export const TASK_KINDS: readonly TaskKind[] = [
  "hardware",
  "network",
  "access",
  "software",
  "snapshot",
];

export function isTaskKind(key: string): key is TaskKind {
  return (TASK_KINDS as readonly string[]).includes(key);
}

export type TaskCheck = { ok: true; task: Task } | { ok: false; reason: string };

/**
 * Checks one config of a known kind and normalises it. The reason names fields and what was
 * wrong, never their values (a key or token has no place in a log line).
 */
export function checkTask(kind: TaskKind, taskId: string, raw: unknown): TaskCheck {
  if (!isObject(raw)) return { ok: false, reason: "expected an object" };
  const { lab_token: rawToken, ...config } = raw;
  const token = labToken.safeParse(rawToken);
  if (!token.success) return { ok: false, reason: `lab_token: ${token.error.issues[0]?.message}` };
  const base = { taskId, labToken: token.data };
  switch (kind) {
    case "hardware":
      return judged(hardwareSchema.safeParse(config), (c) => ({
        kind,
        ...base,
        hostLabId: c.id,
        imageId: c.image,
        hostname: c.hostname,
        power: c.power,
        ipmiCreate: c.ipmi_create,
      }));
    case "network": {
      const hosts: NetworkTask["hosts"] = [];
      for (const [hostLabId, interfaces] of Object.entries(config)) {
        const parsed = hostInterfacesSchema.safeParse(interfaces);
        if (!parsed.success) return { ok: false, reason: reasonOf(parsed.error, [hostLabId]) };
        hosts.push({
          hostLabId,
          interfaces: Object.entries(parsed.data).map(([address, vlans]) => ({
            mac: address,
            vlans: vlans.map((v) => ({ vlanId: v.vlan_id, tagged: v.tagged })),
          })),
        });
      }
      return { ok: true, task: { kind, ...base, hosts } };
    }
    case "access":
      return judged(accessSchema.safeParse(config), (c) => ({
        kind,
        ...base,
        accessType: c.access_type,
        user: c.user,
        revoke: c.revoke,
        sshKey: c.context.key,
        hosts: c.context.hosts,
      }));
    case "software":
      return judged(softwareSchema.safeParse(config), (c) => ({
        kind,
        ...base,
        installer: c.opnfv.installer,
        scenario: c.opnfv.scenario,
        pdf: c.opnfv.pdf,
        idf: c.opnfv.idf,
        roles: (c.opnfv.roles ?? []).flatMap((entry) =>
          Object.entries(entry).map(([hostLabId, role]) => ({ hostLabId, role })),
        ),
      }));
    case "snapshot":
      return judged(snapshotSchema.safeParse(config), (c) => ({
        kind,
        ...base,
        hostLabId: c.host,
        imageId: c.image,
        dashboardId: c.dashboard_id,
      }));
  }
}

/**
 * The kind of a config read on its own (`GET jobs/<job>/<task>` answers the config without it),
 * from the fields only that kind has; null when it matches none.
 */
export function kindOfConfig(raw: unknown): TaskKind | null {
  if (!isObject(raw)) return null;
  if ("access_type" in raw) return "access";
  if ("opnfv" in raw) return "software";
  if ("dashboard_id" in raw) return "snapshot";
  if ("power" in raw || "ipmi_create" in raw) return "hardware";
  const hosts = Object.entries(raw).filter(([key]) => key !== "lab_token");
  if (hosts.length > 0 && hosts.every(([, value]) => isObject(value))) return "network";
  return null;
}

function judged<T>(result: z.ZodSafeParseResult<T>, build: (config: T) => Task): TaskCheck {
  return result.success
    ? { ok: true, task: build(result.data) }
    : { ok: false, reason: reasonOf(result.error) };
}

function reasonOf(error: z.ZodError, prefix: PropertyKey[] = []): string {
  return error.issues
    .map((issue) => {
      const path = [...prefix, ...issue.path].map(String);
      return (path.length > 0 ? `${path.join(".")}: ` : "") + issue.message;
    })
    .join("; ");
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
