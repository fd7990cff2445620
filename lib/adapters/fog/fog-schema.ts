/**
 * What FOG 1.5 answers, as zod schemas, and the mapping to the imager port's types.
 * FOG returns database values as strings ("12", "45.00", "0000000045", " 8.00GB/min"), so every
 * field is read as text and parsed here, never compared as a number as it comes.
 */
import { z } from "zod";
import type { ImagerHost, ImagingProgress } from "../../ports/imager";

/** FOG 1.5's host name rule; a host whose name breaks it answers 404 on single-host routes. */
export const FOG_HOST_NAME = /^[\w!@#$%^()\-'{}.~]{1,15}$/;

/** FOG's task states, for a state object that comes without a name. */
export const TASK_STATE_NAMES: Readonly<Record<number, string>> = {
  0: "Pending",
  1: "Queued",
  2: "Checked In",
  3: "In-Progress",
  4: "Complete",
  5: "Cancelled",
  // Newer schemas (1.5 maintenance, 1.6): the host reported that it could not complete.
  6: "Failed",
};

/**
 * The highest state task/current lists: 4 (Complete), 5 (Cancelled) and 6 (Failed) have left it,
 * and are not active should a FOG list them all the same.
 */
const LAST_ACTIVE_STATE = 3;

/** A scalar FOG may send as a string (the norm) or a number; kept as trimmed text. */
const text = z.union([z.string(), z.number()]).transform((value) => String(value).trim());

/** Same, for fields FOG may also leave null or out. */
const optionalText = z
  .union([z.string(), z.number(), z.null()])
  .optional()
  .transform((value) => (value === null || value === undefined ? "" : String(value).trim()));

/** A number written as text, possibly zero-filled or space-padded; an empty value is refused. */
const numeric = text.transform((value, ctx) => {
  const parsed = value === "" ? Number.NaN : Number(value);
  if (!Number.isFinite(parsed)) {
    ctx.addIssue({ code: "custom", message: `not a number: ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return parsed;
});

export const fogHostSchema = z.object({
  id: text,
  name: text,
  ip: optionalText,
  primac: optionalText,
  imageID: optionalText,
  deployed: optionalText,
});
export type FogHost = z.infer<typeof fogHostSchema>;

export const hostListSchema = z.object({
  count: numeric,
  hosts: z.array(fogHostSchema),
});

const stateSchema = z.object({ id: optionalText, name: optionalText });

export const fogTaskSchema = z.object({
  id: text,
  name: optionalText,
  hostID: text,
  typeID: optionalText,
  stateID: numeric,
  percent: optionalText,
  pct: optionalText,
  state: z.union([stateSchema, z.null()]).optional(),
});
export type FogTask = z.infer<typeof fogTaskSchema>;

export const taskListSchema = z.object({
  count: numeric,
  tasks: z.array(fogTaskSchema),
});

/** FOG's error body: `{"error": "Host is already a member of an active task"}`. */
export const errorBodySchema = z.object({ error: z.string() });

/**
 * An id as FOG stores it (a positive integer) in canonical form, so that "012", " 12" and 12
 * compare equal; null when the value is not such an id. Every id the imager port hands on is in
 * this form (hosts' ids, tasks' host ids), so callers compare them as plain strings.
 */
export function canonicalId(value: string | number): string | null {
  const trimmed = String(value).trim();
  if (!/^\d+$/.test(trimmed)) return null;
  const canonical = trimmed.replace(/^0+(?=\d)/, "");
  return canonical === "0" ? null : canonical;
}

/** FOG writes "0000-00-00 00:00:00" (or leaves the field empty) for "never deployed". */
export function deployedTimestamp(value: string): string | null {
  if (value === "" || /^0{4}-0{2}-0{2}/.test(value) || value === "No Data") return null;
  return value;
}

export function toImagerHost(host: FogHost): ImagerHost {
  return {
    id: canonicalId(host.id) ?? host.id,
    name: host.name,
    mac: host.primac === "" ? null : host.primac.toLowerCase(),
    ip: host.ip === "" ? null : host.ip,
    deployed: deployedTimestamp(host.deployed),
  };
}

export function isActiveTask(task: FogTask): boolean {
  return task.stateID <= LAST_ACTIVE_STATE;
}

/**
 * The task's percentage: `percent` ("45.00") when readable, else `pct` ("0000000045"), else 0
 * (a task that has not started has no progress yet). Clamped to 0–100.
 */
export function taskPercent(task: FogTask): number {
  for (const candidate of [task.percent, task.pct]) {
    if (candidate === "") continue;
    const parsed = Number(candidate);
    if (Number.isFinite(parsed)) return Math.min(100, Math.max(0, parsed));
  }
  return 0;
}

export function toImagingProgress(task: FogTask): ImagingProgress {
  const embeddedName = task.state?.name ?? "";
  return {
    taskId: canonicalId(task.id) ?? task.id,
    hostId: canonicalId(task.hostID) ?? task.hostID,
    taskName: task.name,
    stateId: task.stateID,
    stateName: embeddedName || (TASK_STATE_NAMES[task.stateID] ?? `State ${task.stateID}`),
    percent: taskPercent(task),
  };
}
