/**
 * What the jobs API sends for jobs: a listing is `[{"id": <job>, "payload": {<kind>: {<task id>:
 * <config>}}}]`, and one job (`GET jobs/<job>`) is one such entry with every task. Entries and
 * tasks are checked one by one: a malformed one, or a task of a kind this client does not know,
 * is set aside with its reason, and the rest go through.
 */
import { z } from "zod";
import type { Job } from "../../ports/jobs-dashboard";
import { checkTask, isObject, isTaskKind } from "./task-schema";

/** Something left out of an answer, and why (field names and kinds only, never values). */
export interface SetAside {
  jobId: number | null;
  kind: string | null;
  taskId: string | null;
  reason: string;
}

export interface ParsedJobs {
  jobs: Job[];
  setAside: SetAside[];
}

const entrySchema = z.object({
  id: z.int().nonnegative(),
  payload: z.record(z.string(), z.unknown()),
});

/** A listing's body; null when it is not a list at all (the whole answer is then wrong). */
export function parseListing(body: unknown): ParsedJobs | null {
  if (!Array.isArray(body)) return null;
  const result: ParsedJobs = { jobs: [], setAside: [] };
  const seen = new Set<number>();
  for (const raw of body) {
    const parsed = parseJob(raw);
    result.setAside.push(...parsed.setAside);
    if (parsed.job === null) continue;
    if (seen.has(parsed.job.id)) {
      result.setAside.push({
        jobId: parsed.job.id,
        kind: null,
        taskId: null,
        reason: "job listed twice",
      });
      continue;
    }
    seen.add(parsed.job.id);
    result.jobs.push(parsed.job);
  }
  return result;
}

/** One job entry; `job` is null when the entry itself is malformed. */
export function parseJob(raw: unknown): { job: Job | null; setAside: SetAside[] } {
  const entry = entrySchema.safeParse(raw);
  if (!entry.success) {
    const id = isObject(raw) && Number.isSafeInteger(raw.id) ? (raw.id as number) : null;
    const reason = entry.error.issues
      .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ` : "") + issue.message)
      .join("; ");
    return { job: null, setAside: [{ jobId: id, kind: null, taskId: null, reason }] };
  }
  const jobId = entry.data.id;
  const job: Job = { id: jobId, tasks: [] };
  const setAside: SetAside[] = [];
  for (const [kind, tasks] of Object.entries(entry.data.payload)) {
    if (!isTaskKind(kind)) {
      setAside.push({ jobId, kind: kind.slice(0, 64), taskId: null, reason: "unknown task kind" });
      continue;
    }
    if (!isObject(tasks)) {
      setAside.push({ jobId, kind, taskId: null, reason: "expected an object of tasks" });
      continue;
    }
    for (const [taskId, config] of Object.entries(tasks)) {
      const check = checkTask(kind, taskId, config);
      if (check.ok) job.tasks.push(check.task);
      else setAside.push({ jobId, kind, taskId: taskId.slice(0, 64), reason: check.reason });
    }
  }
  return { job, setAside };
}
