/** The jobs-API simulator answers as the real dashboard does (reference/dashboard-apis.md §2). */
import { afterEach, describe, expect, it } from "vitest";
import {
  accessTask,
  hardwareTask,
  type JobsDashboardSim,
  type JobsDashboardSimOptions,
  networkTask,
  softwareTask,
  startJobsDashboardSim,
} from "../sim/jobs-dashboard-sim";

const TOKEN = "sim-token-1b6f";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function sim(options: JobsDashboardSimOptions = {}): Promise<JobsDashboardSim> {
  const started = await startJobsDashboardSim({ lab: "lab-a", token: TOKEN, ...options });
  cleanups.push(() => started.close());
  return started;
}

function bookingJob(dashboard: JobsDashboardSim) {
  return dashboard.addJob([
    hardwareTask({ hostLabId: "hpe3", imageId: 17, ipmiCreate: true, ipmiSpelling: "python" }),
    networkTask({
      hostLabId: "hpe3",
      interfaces: { "aa:bb:cc:00:00:01": [{ vlanId: 3001, tagged: true }] },
    }),
    accessTask({ accessType: "vpn", user: 42 }),
    accessTask({ accessType: "ssh", user: 42, hosts: ["hpe3"] }),
    softwareTask({ bookingId: 9, installer: "Joid", scenario: "os-nosdn-nofeature-ha" }),
  ]);
}

async function call(
  dashboard: JobsDashboardSim,
  path: string,
  init: {
    method?: string;
    token?: string | null;
    form?: Record<string, string>;
    json?: unknown;
  } = {},
): Promise<{ status: number; type: string; text: string; body: unknown }> {
  const headers: Record<string, string> = {};
  if (init.token !== null) headers["auth-token"] = init.token ?? TOKEN;
  let body: string | undefined;
  if (init.form) {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(init.form).toString();
  } else if (init.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(init.json);
  }
  const response = await fetch(`${dashboard.url}${path}`, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  return {
    status: response.status,
    type,
    text,
    body: type.includes("json") ? JSON.parse(text) : null,
  };
}

describe("the jobs-API simulator's routes", () => {
  it("has no trailing slash, and takes only integer job ids", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const task = job.tasks[0]!.taskId;
    expect((await call(dashboard, "/api/labs/lab-a/jobs/new")).status).toBe(200);
    for (const path of [
      "/api/labs/lab-a/jobs/new/",
      `/api/labs/lab-a/jobs/${job.id}/`,
      `/api/labs/lab-a/jobs/${job.id}/${task}/`,
      "/api/labs/lab-a/jobs/seven",
      `/api/labs/lab-a/jobs/seven/${task}`,
    ]) {
      const answer = await call(dashboard, path);
      expect([path, answer.status, answer.type]).toEqual([path, 404, "text/html; charset=utf-8"]);
    }
  });

  it("refuses a wrong or missing token and an unknown lab with a 403 page", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    for (const [path, token] of [
      ["/api/labs/lab-a/jobs/new", "wrong"],
      ["/api/labs/lab-a/jobs/new", null],
      ["/api/labs/lab-b/jobs/new", TOKEN],
      [`/api/labs/lab-b/jobs/${job.id}`, TOKEN],
    ] as const) {
      const answer = await call(dashboard, path, { token });
      expect([path, answer.status, answer.type]).toEqual([path, 403, "text/html; charset=utf-8"]);
    }
    const refused = await call(
      dashboard,
      `/api/labs/lab-a/jobs/${job.id}/${job.tasks[0]!.taskId}`,
      {
        token: "wrong",
        form: { status: "100" },
      },
    );
    expect(refused.status).toBe(403);
    expect(job.tasks[0]!.status).toBe(0);
    expect(dashboard.requests.map((r) => r.token)).toEqual([
      "wrong",
      "none",
      "right",
      "right",
      "wrong",
    ]);
  });

  it("refuses a POST to a listing by its CSRF check, before auth", async () => {
    const dashboard = await sim();
    bookingJob(dashboard);
    for (const which of ["new", "current", "done"]) {
      for (const token of [TOKEN, "wrong"]) {
        const answer = await call(dashboard, `/api/labs/lab-a/jobs/${which}`, {
          token,
          form: { status: "100" },
        });
        expect(answer.status).toBe(403);
        expect(answer.text).toContain("CSRF verification failed");
      }
    }
  });

  it("answers a 500 page for an unknown job or task id, whatever the job in the URL", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const other = dashboard.addJob([hardwareTask({ hostLabId: "hpe4" })]);
    for (const path of ["/api/labs/lab-a/jobs/999", `/api/labs/lab-a/jobs/${job.id}/not-a-task`]) {
      const answer = await call(dashboard, path);
      expect([answer.status, answer.type]).toEqual([500, "text/html; charset=utf-8"]);
    }
    const posted = await call(dashboard, `/api/labs/lab-a/jobs/${job.id}/not-a-task`, {
      form: { status: "100" },
    });
    expect(posted.status).toBe(500);
    // The job id is not checked against the task: another job's task is found all the same.
    const crossed = await call(
      dashboard,
      `/api/labs/lab-a/jobs/${job.id}/${other.tasks[0]!.taskId}`,
    );
    expect(crossed.body).toMatchObject({ id: "hpe4", power: "on" });
  });
});

describe("the jobs-API simulator's status posts", () => {
  it("reads form fields, keeps the lab token per task, and answers task and meta", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const [hw, net] = job.tasks;
    const answer = await call(dashboard, `/api/labs/lab-a/jobs/${job.id}/${hw!.taskId}`, {
      form: { status: "200", message: "host up at 10.0.0.5", lab_token: "hw-token" },
    });
    expect(answer.body).toEqual({
      task: {
        id: "hpe3",
        image: 17,
        hostname: "hpe3-pod",
        power: "on",
        ipmi_create: "True",
        lab_token: "hw-token",
      },
      meta: { status: "200", job: `Job object (${job.id})`, message: "host up at 10.0.0.5" },
    });
    expect(hw).toMatchObject({ status: 200, labToken: "hw-token", message: "host up at 10.0.0.5" });
    expect(net!.labToken).toBe("null");
    const read = await call(dashboard, `/api/labs/lab-a/jobs/${job.id}/${net!.taskId}`);
    expect(read.body).toMatchObject({ lab_token: "null" });
  });

  it("silently ignores a JSON body: the task does not change, the answer still says 200", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const task = job.tasks[0]!;
    const answer = await call(dashboard, `/api/labs/lab-a/jobs/${job.id}/${task.taskId}`, {
      json: { status: 200, message: "done", lab_token: "t" },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ meta: { status: 0, message: "" } });
    expect(task).toMatchObject({ status: 0, labToken: "null", message: "" });
    expect(dashboard.statusPosts[0]).toMatchObject({ contentType: "application/json", fields: {} });
  });

  it("fails the save of a status that is no integer, or a lab token past 50 characters", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const path = `/api/labs/lab-a/jobs/${job.id}/${job.tasks[0]!.taskId}`;
    expect((await call(dashboard, path, { form: { status: "done" } })).status).toBe(500);
    expect((await call(dashboard, path, { form: { lab_token: "x".repeat(51) } })).status).toBe(500);
    expect((await call(dashboard, path, { form: { lab_token: "x".repeat(50) } })).status).toBe(200);
    expect(dashboard.statusPosts.map((p) => p.applied)).toEqual([false, false, true]);
  });

  it("applies a post whose answer it then loses", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    dashboard.failNext(1, { kind: "lost" });
    await expect(
      call(dashboard, `/api/labs/lab-a/jobs/${job.id}/${job.tasks[0]!.taskId}`, {
        form: { status: "100" },
      }),
    ).rejects.toThrow();
    expect(job.tasks[0]!.status).toBe(100);
    dashboard.failNext(1, { kind: "reset" });
    await expect(
      call(dashboard, `/api/labs/lab-a/jobs/${job.id}/${job.tasks[0]!.taskId}`, {
        form: { status: "200" },
      }),
    ).rejects.toThrow();
    expect(job.tasks[0]!.status).toBe(100);
  });
});

describe("the jobs-API simulator's listings", () => {
  it("lists a job under each status its tasks have, with only those tasks; 300 nowhere", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const [hw, net, vpn, ssh, sw] = job.tasks;
    hw!.status = 100;
    net!.status = 200;
    vpn!.status = 300;
    const listed = async (which: string) => {
      const answer = await call(dashboard, `/api/labs/lab-a/jobs/${which}`);
      return answer.body as Array<{ id: number; payload: Record<string, Record<string, unknown>> }>;
    };
    const ids = (jobs: Awaited<ReturnType<typeof listed>>) =>
      jobs.flatMap((j) => Object.values(j.payload).flatMap((tasks) => Object.keys(tasks))).sort();
    expect(ids(await listed("new"))).toEqual([ssh!.taskId, sw!.taskId].sort());
    expect(await listed("current")).toEqual([
      {
        id: job.id,
        payload: { hardware: { [hw!.taskId]: expect.objectContaining({ lab_token: "null" }) } },
      },
    ]);
    expect(ids(await listed("done"))).toEqual([net!.taskId]);
    const everywhere = [
      ...(await listed("new")),
      ...(await listed("current")),
      ...(await listed("done")),
    ];
    expect(ids(everywhere)).not.toContain(vpn!.taskId);
    // A job with no task at a status is left out of that listing, not listed empty.
    ssh!.status = 200;
    sw!.status = 200;
    expect(await listed("new")).toEqual([]);
  });
});

describe("the jobs-API simulator's booking end", () => {
  it("re-issues the tasks as cleanup at 0 (2022): power off, VLANs emptied, vpn revoked", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    for (const task of job.tasks) {
      task.status = 200;
      task.labToken = `${task.kind}-token`;
    }
    expect(dashboard.hostsAllocated(job.id)).toBe(true);
    dashboard.endBooking(job.id);
    const [hw, net, vpn, ssh, sw] = job.tasks;
    expect(hw).toMatchObject({
      status: 0,
      config: expect.objectContaining({ power: "off", image: 17 }),
    });
    expect(net).toMatchObject({ status: 0, config: { hpe3: { "aa:bb:cc:00:00:01": [] } } });
    expect(vpn).toMatchObject({ status: 0, config: expect.objectContaining({ revoke: true }) });
    expect(ssh).toMatchObject({ status: 200, config: expect.objectContaining({ revoke: false }) });
    expect(sw).toMatchObject({
      status: 0,
      config: softwareTask({ bookingId: 9, installer: "Joid", scenario: "os-nosdn-nofeature-ha" })
        .config,
    });
    // The lab token comes back with the cleanup: the lab finds what it did.
    const answer = await call(dashboard, `/api/labs/lab-a/jobs/${job.id}/${vpn!.taskId}`);
    expect(answer.body).toMatchObject({ revoke: true, lab_token: "access-token" });
    // Hosts stay allocated while hardware or network cleanup is not done; a 300 keeps them.
    expect(dashboard.hostsAllocated(job.id)).toBe(true);
    hw!.status = 200;
    net!.status = 300;
    expect(dashboard.hostsAllocated(job.id)).toBe(true);
    net!.status = 200;
    expect(dashboard.hostsAllocated(job.id)).toBe(false);
  });

  it("plays the 2019 cleanup: no image (no reimage), software cleared", async () => {
    const dashboard = await sim({ cleanup: "2019" });
    const job = bookingJob(dashboard);
    dashboard.endBooking(job.id);
    const [hw, , , , sw] = job.tasks;
    expect(hw!.config).not.toHaveProperty("image");
    expect(hw!.config.power).toBe("off");
    expect(sw!.config).toEqual({ opnfv: {} });
  });
});
