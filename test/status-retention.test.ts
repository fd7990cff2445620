/**
 * `laas status` shows the bookings that matter now — active ones, a failed one whose host is
 * still to be cleaned, and those ended within the last day — and says how many it left out;
 * `--all` shows everything the store holds. Run through main() on a copy of the shipped conf/,
 * whose store is filled directly.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stepHandlers } from "../functions/steps";
import { openEmbeddedStore } from "../lib/app/embedded-store";
import { main } from "../lib/cli/main";
import { problemLines } from "../lib/cli/status";
import { loadPharosConfig } from "../lib/config/load";
import type { Booking } from "../lib/domain/booking";
import { emptyJob, takeTasks } from "../lib/lifecycle/jobs/intake";
import { newBooking } from "../lib/lifecycle/transitions";
import type { HardwareTask } from "../lib/ports/jobs-dashboard";
import { dashboardBooking } from "./helpers/bookings";

const REPO = resolve(import.meta.dirname, "..");
const JOB_TASK: HardwareTask = {
  kind: "hardware",
  taskId: "5c1f0c9e-0000-4000-8000-000000000031",
  labToken: null,
  hostLabId: "50",
  imageId: "3",
  hostname: null,
  power: "on",
  ipmiCreate: false,
};
const HOUR = 3600_000;

async function laas(...args: string[]): Promise<{ code: number; stdout: string }> {
  const out: string[] = [];
  const code = await main(["node", "laas", ...args], {
    handlers: stepHandlers,
    out: (line) => out.push(line),
    err: (line) => out.push(line),
  });
  return { code, stdout: out.join("\n") };
}

describe("laas status and ended bookings", () => {
  let root: string;
  let pharos: string;
  const now = Date.now();
  /** Booking id → what it is; the ones status shows by default are marked. */
  const bookings: [string, Partial<Booking>, boolean][] = [
    ["801", { state: "ready" }, true],
    ["802", { state: "scheduled" }, true],
    // Its host is still to be cleaned: not over, however old its last change.
    ["803", { state: "failed", cleanup: "after-provision", updatedAt: ago(72 * HOUR) }, true],
    ["804", { state: "released", updatedAt: ago(HOUR) }, true],
    ["805", { state: "released", updatedAt: ago(25 * HOUR) }, false],
    ["806", { state: "cancelled", updatedAt: ago(30 * 24 * HOUR) }, false],
    ["807", { state: "failed", updatedAt: ago(48 * HOUR) }, false],
  ];

  function ago(ms: number): string {
    return new Date(now - ms).toISOString();
  }

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "laas-status-"));
    cpSync(join(REPO, "conf"), join(root, "conf"), { recursive: true });
    cpSync(join(REPO, "templates"), join(root, "templates"), { recursive: true });
    pharos = join(root, "conf", "pharos.yaml");
    const { database } = await loadPharosConfig(pharos);
    const handle = await openEmbeddedStore(database, { listen: false });
    try {
      for (const [id, fields] of bookings) {
        const fresh = newBooking(dashboardBooking({ id, hostName: `host-${id}` }), new Date(now));
        await handle.store.createBooking({ ...fresh, ...fields });
      }
      // A job of the jobs API under way, one task's post failing; and one finished.
      for (const [jobId, finished] of [
        [31, false],
        [32, true],
      ] as const) {
        const taken = takeTasks(
          { id: jobId, tasks: [JOB_TASK] },
          "new",
          new Date(now),
        )(emptyJob("lab", jobId, new Date(now)))!;
        await handle.store.createJob({
          ...taken,
          finishedAt: finished ? new Date(now).toISOString() : null,
          tasks: {
            [JOB_TASK.taskId]: {
              ...taken.tasks[JOB_TASK.taskId]!,
              postError: "the dashboard answered 502",
            },
          },
        });
      }
    } finally {
      await handle.close();
    }
  });
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const rowsOf = (stdout: string) =>
    stdout
      .split("\n")
      .map((line) => /^(80\d)\s+host-/.exec(line)?.[1])
      .filter((id) => id !== undefined)
      .sort();
  const shown = bookings.filter(([, , byDefault]) => byDefault).map(([id]) => id);

  it("shows active and recently ended bookings, and says how many it left out", async () => {
    const result = await laas("status", "--config", pharos);
    expect(result.code, result.stdout).toBe(0);
    expect(rowsOf(result.stdout)).toEqual(shown);
    expect(result.stdout).toContain("3 older ended booking(s) not shown; --all shows them");
  });

  it("--all shows every booking the store holds", async () => {
    const result = await laas("status", "--all", "--config", pharos);
    expect(result.code, result.stdout).toBe(0);
    expect(rowsOf(result.stdout)).toEqual(bookings.map(([id]) => id));
    expect(result.stdout).not.toContain("not shown");
  });

  it("--json does the same, with the count left out", async () => {
    const parse = (stdout: string) =>
      JSON.parse(stdout) as { bookings: Booking[]; notShown: number };
    const byDefault = parse((await laas("status", "--json", "--config", pharos)).stdout);
    expect(byDefault.bookings.map((b) => b.id).sort()).toEqual(shown);
    expect(byDefault.notShown).toBe(3);
    const all = parse((await laas("status", "--json", "--all", "--config", pharos)).stdout);
    expect(all.bookings).toHaveLength(bookings.length);
    expect(all.notShown).toBe(0);
  });

  it("shows the jobs not finished, their tasks, and a task whose status is not posted", async () => {
    const result = await laas("status", "--config", pharos);
    expect(result.stdout).toMatch(/^31\s+hardware\s+provision\s+-\s+post failing$/m);
    expect(result.stdout).not.toMatch(/^32\s+hardware/m);
    expect(result.stdout).toContain(
      `job 31 task ${JOB_TASK.taskId} (hardware, provision): status not posted, posted again at every poll:\n    the dashboard answered 502`,
    );
    expect((await laas("status", "--all", "--config", pharos)).stdout).toMatch(/^32\s+hardware/m);
    const json = JSON.parse((await laas("status", "--json", "--config", pharos)).stdout);
    expect(json.jobs.map((j: { jobId: number }) => j.jobId)).toEqual([31]);
  });

  it("--help names --all", async () => {
    expect((await laas("status", "--help")).stdout).toContain("--all");
  });
});

describe("laas status's notes under the tables", () => {
  const base = newBooking(dashboardBooking({ id: "77", hostName: "pod1" }), new Date());

  it("say why an active booking's end notice was not sent, and not once it has ended", () => {
    const skipped = {
      ...base,
      state: "ready" as const,
      endNotice: {
        end: base.end,
        state: "skipped" as const,
        at: base.end,
        reason: "the dashboard has no address for user 7",
      },
    };
    expect(problemLines(skipped)).toEqual([
      "booking 77 (pod1): end notice not sent:",
      "    the dashboard has no address for user 7",
    ]);
    const deferred = {
      ...skipped,
      endNotice: { ...skipped.endNotice, state: "failed" as const, reason: "451 try later" },
    };
    expect(problemLines(deferred)[0]).toBe(
      "booking 77 (pod1): end notice not sent yet (tried again):",
    );
    expect(problemLines({ ...skipped, state: "released" })).toEqual([]);
    expect(
      problemLines({ ...skipped, endNotice: { ...skipped.endNotice, state: "sent" } }),
    ).toEqual([]);
  });
});
