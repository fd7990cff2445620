import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { LaasJobsDashboard } from "../lib/adapters/laas-jobs/jobs-client";
import {
  AuthError,
  ConfigError,
  NotFoundError,
  OutcomeUnknownError,
  ProtocolError,
  TransientError,
} from "../lib/errors";
import type { Logger } from "../lib/log";
import { silentLogger } from "../lib/log";
import { Secret } from "../lib/secret";
import {
  accessTask,
  hardwareTask,
  type JobsDashboardSim,
  type JobsDashboardSimOptions,
  networkTask,
  SAMPLE_KEY,
  snapshotTask,
  softwareTask,
  startJobsDashboardSim,
} from "../sim/jobs-dashboard-sim";
import { capturingLogger } from "./helpers/logs";

const TOKEN = "lab-token-9d2e41c7";
const LAB = "arm-lab";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function sim(options: JobsDashboardSimOptions = {}): Promise<JobsDashboardSim> {
  const started = await startJobsDashboardSim({ lab: LAB, token: TOKEN, ...options });
  cleanups.push(() => started.close());
  return started;
}

function client(
  dashboard: JobsDashboardSim,
  options: { token?: string; lab?: string; logger?: Logger } = {},
): LaasJobsDashboard {
  return new LaasJobsDashboard(
    {
      url: dashboard.url,
      lab: options.lab ?? LAB,
      token: new Secret(options.token ?? TOKEN),
      requestTimeoutSeconds: 2,
      retry: { firstDelayMs: 5, maxDelayMs: 20 },
      postRetry: { minDelayMs: 5, maxDelayMs: 20 },
    },
    options.logger ?? silentLogger,
  );
}

/** A booking's job as the dashboard issues it: hardware, network, vpn and ssh access, software. */
function bookingJob(dashboard: JobsDashboardSim, spelling: "boolean" | "python" = "boolean") {
  return dashboard.addJob([
    hardwareTask({
      hostLabId: "hpe3",
      imageId: 17,
      hostname: "ada-pod",
      ipmiCreate: true,
      ipmiSpelling: spelling,
    }),
    networkTask({
      hostLabId: "hpe3",
      interfaces: {
        "AA:BB:CC:00:00:01": [
          { vlanId: 3001, tagged: true },
          { vlanId: 10, tagged: false },
        ],
      },
    }),
    accessTask({ accessType: "vpn", user: 42 }),
    accessTask({ accessType: "ssh", user: 42, hosts: ["hpe3"] }),
    softwareTask({
      bookingId: 9,
      installer: "Fuel",
      scenario: "os-nosdn-nofeature-noha",
      roles: { hpe3: "Jumphost" },
    }),
  ]);
}

describe("LaasJobsDashboard.listJobs", () => {
  it("normalises every task kind, lab_token taken out of the configs", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const [hw, net, vpn, ssh, sw] = job.tasks.map((t) => t.taskId);

    const jobs = await client(dashboard).listJobs("new");

    expect(jobs).toEqual([
      {
        id: job.id,
        tasks: expect.arrayContaining([
          {
            kind: "hardware",
            taskId: hw,
            labToken: null,
            hostLabId: "hpe3",
            imageId: "17",
            hostname: "ada-pod",
            power: "on",
            ipmiCreate: true,
          },
          {
            kind: "network",
            taskId: net,
            labToken: null,
            hosts: [
              {
                hostLabId: "hpe3",
                interfaces: [
                  {
                    mac: "aa:bb:cc:00:00:01",
                    vlans: [
                      { vlanId: 3001, tagged: true },
                      { vlanId: 10, tagged: false },
                    ],
                  },
                ],
              },
            ],
          },
          {
            kind: "access",
            taskId: vpn,
            labToken: null,
            accessType: "vpn",
            user: "42",
            revoke: false,
            sshKey: null,
            hosts: [],
          },
          {
            kind: "access",
            taskId: ssh,
            labToken: null,
            accessType: "ssh",
            user: "42",
            revoke: false,
            sshKey: SAMPLE_KEY,
            hosts: ["hpe3"],
          },
          {
            kind: "software",
            taskId: sw,
            labToken: null,
            installer: "Fuel",
            scenario: "os-nosdn-nofeature-noha",
            pdf: `/api/labs/sim-lab/booking/9/pdf`,
            idf: `/api/labs/sim-lab/booking/9/idf`,
            roles: [{ hostLabId: "hpe3", role: "Jumphost" }],
          },
        ]),
      },
    ]);
    expect(jobs[0]?.tasks).toHaveLength(5);
    expect(JSON.stringify(jobs)).not.toContain("lab_token");
  });

  it.each([
    ["boolean", true],
    ["boolean", false],
    ["python", true],
    ["python", false],
  ] as const)("reads ipmi_create spelled as a %s (%s)", async (spelling, ipmiCreate) => {
    const dashboard = await sim();
    dashboard.addJob([hardwareTask({ hostLabId: "hpe3", ipmiCreate, ipmiSpelling: spelling })]);
    const [job] = await client(dashboard).listJobs("new");
    expect(job?.tasks[0]).toMatchObject({ kind: "hardware", ipmiCreate });
  });

  it("lists only the tasks at the listing's status, and a job under each status it has", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const jobs = client(dashboard);
    const [hw, net, vpn] = job.tasks.map((t) => t.taskId);
    await jobs.postStatus(job.id, hw!, { status: 100 });
    await jobs.postStatus(job.id, net!, { status: 200, labToken: "net-17" });
    await jobs.postStatus(job.id, vpn!, { status: 300, message: "directory down" });

    const ids = async (which: "new" | "current" | "done") =>
      (await jobs.listJobs(which)).flatMap((j) => j.tasks.map((t) => t.taskId)).sort();
    expect(await ids("current")).toEqual([hw]);
    expect(await ids("done")).toEqual([net]);
    expect(await ids("new")).toEqual([job.tasks[3]?.taskId, job.tasks[4]?.taskId].sort());
    // The lab token posted comes back with the task, out of its config.
    const [done] = await jobs.listJobs("done");
    expect(done?.tasks[0]?.labToken).toBe("net-17");
    // A job whose tasks are all elsewhere is not listed.
    dashboard.addJob([hardwareTask({ hostLabId: "hpe4", power: "on" })], 50);
    await jobs.postStatus(50, dashboard.job(50)!.tasks[0]!.taskId, { status: 200 });
    expect((await jobs.listJobs("new")).map((j) => j.id)).toEqual([job.id]);
  });

  it("keeps a task of an unknown kind and a malformed task out, with a warning, and the rest", async () => {
    const dashboard = await sim();
    const job = dashboard.addJob([
      hardwareTask({ hostLabId: "hpe3" }),
      { kind: "active_users", config: {} },
      { kind: "hardware", config: { id: "hpe4", power: "sideways" } },
    ]);
    const { logger, lines } = capturingLogger();
    const [listed] = await client(dashboard, { logger }).listJobs("new");
    expect(listed?.tasks.map((t) => t.taskId)).toEqual([job.tasks[0]?.taskId]);
    const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 40);
    expect(warnings.map((w) => [w.kind, w.reason]).sort()).toEqual([
      ["active_users", "unknown task kind"],
      ["hardware", expect.stringContaining("power")],
    ]);
  });

  it("refuses an answer that is no list", async () => {
    const dashboard = await sim();
    const jobs = client(dashboard, { lab: "arm-lab" });
    // A listing route answered by something else: the shape is wrong.
    const original = globalThis.fetch;
    globalThis.fetch = async () =>
      new Response(JSON.stringify({ jobs: [] }), {
        headers: { "content-type": "application/json" },
      });
    try {
      await expect(jobs.listJobs("new")).rejects.toThrow(ProtocolError);
    } finally {
      globalThis.fetch = original;
    }
  });
});

describe("LaasJobsDashboard.getJob and getTask", () => {
  it("reads every task of a job, and one task by itself with its kind found", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard, "python");
    dashboard.addJob([snapshotTask({ hostLabId: "hpe3", dashboardId: 4 })], 30);
    const jobs = client(dashboard);
    await jobs.postStatus(job.id, job.tasks[0]!.taskId, { status: 300, message: "no such image" });

    const whole = await jobs.getJob(job.id);
    expect(whole.tasks).toHaveLength(5); // the task at 300 too
    for (const task of whole.tasks) {
      expect(await jobs.getTask(job.id, task.taskId)).toEqual(task);
    }
    const snapshot = dashboard.job(30)!.tasks[0]!.taskId;
    expect(await jobs.getTask(30, snapshot)).toEqual({
      kind: "snapshot",
      taskId: snapshot,
      labToken: null,
      hostLabId: "hpe3",
      imageId: null,
      dashboardId: 4,
    });
  });

  it("an unknown job or task id (a 500 page) is a NotFoundError after the retries", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const jobs = client(dashboard);
    await expect(jobs.getJob(999)).rejects.toThrow(NotFoundError);
    await expect(jobs.getTask(job.id, "6f1c0000-0000-4000-8000-000000000000")).rejects.toThrow(
      NotFoundError,
    );
    await expect(
      jobs.postStatus(job.id, "6f1c0000-0000-4000-8000-000000000000", { status: 100 }),
    ).rejects.toThrow(NotFoundError);
    // Each was asked more than once: a 500 may also be a passing server error.
    expect(dashboard.requests.filter((r) => r.path.endsWith("/jobs/999")).length).toBeGreaterThan(
      1,
    );
  });

  it("a 500 that passes is a server error, not an unknown id", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    dashboard.failNext(2, { kind: "status", status: 500 });
    expect((await client(dashboard).getJob(job.id)).tasks).toHaveLength(5);
  });
});

describe("LaasJobsDashboard.postStatus", () => {
  it("posts form fields the dashboard reads, and takes its answer", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const task = job.tasks[2]!;
    await client(dashboard).postStatus(job.id, task.taskId, {
      status: 200,
      message: "VPN user ada, password s3cr3t-Pw",
      labToken: "vpn-ada",
    });
    expect(dashboard.statusPosts).toEqual([
      {
        jobId: String(job.id),
        taskId: task.taskId,
        contentType: "application/x-www-form-urlencoded",
        body: expect.any(String),
        fields: {
          status: "200",
          message: "VPN user ada, password s3cr3t-Pw",
          lab_token: "vpn-ada",
        },
        applied: true,
      },
    ]);
    expect(task).toMatchObject({ status: 200, labToken: "vpn-ada" });
    expect(dashboard.requests.every((r) => r.path.startsWith(`/api/labs/${LAB}/jobs/`))).toBe(true);
    expect(dashboard.requests.every((r) => !r.path.endsWith("/"))).toBe(true);
  });

  it("posts again when the answer was lost after the dashboard applied it; the repeat is harmless", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const task = job.tasks[0]!;
    dashboard.failNext(1, { kind: "lost" });
    await client(dashboard).postStatus(job.id, task.taskId, { status: 100, labToken: "hw-1" });
    expect(dashboard.statusPosts.map((p) => p.applied)).toEqual([true, true]);
    expect(dashboard.requests.map((r) => r.status)).toEqual([0, 200]);
    expect(task).toMatchObject({ status: 100, labToken: "hw-1" });
  });

  it("posts again after a reset and a 502; gives up with a clear error after its budget", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const task = job.tasks[0]!;
    dashboard.failNext(1, { kind: "reset" });
    dashboard.failNext(1, { kind: "status", status: 502 });
    await client(dashboard).postStatus(job.id, task.taskId, { status: 100 });
    expect(task.status).toBe(100);

    dashboard.failNext(10, { kind: "lost" });
    const failed = client(dashboard).postStatus(job.id, task.taskId, { status: 200 });
    await expect(failed).rejects.toThrow(OutcomeUnknownError);
    await expect(failed).rejects.toThrow(
      new RegExp(
        `did not confirm status 200 of task ${task.taskId} \\(job ${job.id}\\) after 5 attempts`,
      ),
    );
  });

  it("refuses a lab token longer than the dashboard keeps, before posting", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    await expect(
      client(dashboard).postStatus(job.id, job.tasks[0]!.taskId, {
        status: 200,
        labToken: "x".repeat(51),
      }),
    ).rejects.toThrow(ProtocolError);
    expect(dashboard.statusPosts).toEqual([]);
  });

  it("an answer that kept the old status is a ProtocolError (the form was not read)", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const task = job.tasks[0]!;
    const original = globalThis.fetch;
    // The same request, its body sent as JSON: the dashboard ignores it.
    globalThis.fetch = (input, init) =>
      original(input, {
        ...init,
        headers: {
          ...(init?.headers as Record<string, string>),
          "Content-Type": "application/json",
        },
      });
    try {
      await expect(
        client(dashboard).postStatus(job.id, task.taskId, { status: 200 }),
      ).rejects.toThrow(/kept status 0 where 200 was posted/);
    } finally {
      globalThis.fetch = original;
    }
    expect(task.status).toBe(0);
  });
});

describe("LaasJobsDashboard errors", () => {
  it("a wrong token or an unknown lab is an AuthError naming the lab, never the token", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const { logger, lines } = capturingLogger();
    const wrong = "wrong-token-5e7a";
    for (const jobs of [
      client(dashboard, { token: wrong, logger }),
      client(dashboard, { lab: "other-lab", logger }),
    ]) {
      const failures = await Promise.allSettled([
        jobs.listJobs("new"),
        jobs.getJob(job.id),
        jobs.getTask(job.id, job.tasks[0]!.taskId),
        jobs.postStatus(job.id, job.tasks[0]!.taskId, { status: 100 }),
      ]);
      for (const failure of failures) {
        expect(failure.status).toBe("rejected");
        const error = (failure as PromiseRejectedResult).reason as Error;
        expect(error).toBeInstanceOf(AuthError);
        expect(error.message).toContain(jobs.lab);
        expect(error.message).not.toContain(wrong);
        expect(error.message).not.toContain(TOKEN);
      }
    }
    expect(job.tasks[0]?.status).toBe(0);
    expect(lines.join("\n")).not.toContain(wrong);
  });

  it("no secret in any error or log line: the token, nor a status message", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const { logger, lines } = capturingLogger();
    const jobs = client(dashboard, { logger });
    const password = "vpn-pass-Zq81";
    dashboard.failNext(2, { kind: "lost" });
    await jobs.postStatus(job.id, job.tasks[2]!.taskId, {
      status: 200,
      message: `password ${password}`,
    });
    await jobs.listJobs("done");
    dashboard.failNext(5, { kind: "status", status: 503 });
    const errors = await Promise.allSettled([
      jobs.postStatus(job.id, job.tasks[2]!.taskId, {
        status: 200,
        message: `password ${password}`,
      }),
    ]);
    const rejected = errors.map((e) => (e as PromiseRejectedResult).reason as Error);
    expect(rejected[0]).toBeInstanceOf(TransientError);
    const text = [...lines, ...rejected.map((e) => `${e.message} ${String(e.cause)}`)].join("\n");
    expect(lines.length).toBeGreaterThan(0);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(password);
  });

  it("a route that is not there is a ConfigError", async () => {
    const dashboard = await sim();
    const jobs = new LaasJobsDashboard(
      {
        url: `${dashboard.url}/dashboard`,
        lab: LAB,
        token: new Secret(TOKEN),
        retry: { firstDelayMs: 5 },
      },
      silentLogger,
    );
    await expect(jobs.listJobs("new")).rejects.toThrow(ConfigError);
  });
});

describe("LaasJobsDashboard guards", () => {
  it("reads a booking's cleanup re-issue: power off, VLANs emptied, vpn revoked, its lab token back", async () => {
    const dashboard = await sim({ cleanup: "2019" });
    const job = bookingJob(dashboard);
    const jobs = client(dashboard);
    for (const task of job.tasks) {
      await jobs.postStatus(job.id, task.taskId, { status: 200, labToken: `${task.kind}-1` });
    }
    dashboard.endBooking(job.id);
    const [listed] = await jobs.listJobs("new");
    const byKind = Object.fromEntries((listed?.tasks ?? []).map((t) => [t.kind, t]));
    expect(byKind.hardware).toMatchObject({ power: "off", imageId: null, labToken: "hardware-1" });
    expect(byKind.network).toMatchObject({
      hosts: [{ hostLabId: "hpe3", interfaces: [{ vlans: [] }] }],
    });
    expect(byKind.access).toMatchObject({ accessType: "vpn", revoke: true, labToken: "access-1" });
    expect(byKind.software).toMatchObject({ installer: null, scenario: null, roles: [] });
    expect(listed?.tasks).toHaveLength(4); // the ssh task is not re-issued
  });

  it("leaves out a listed job all of whose tasks were set aside", async () => {
    const dashboard = await sim();
    dashboard.addJob([{ kind: "active_users", config: {} }]);
    expect(await client(dashboard).listJobs("new")).toEqual([]);
  });

  it("refuses a job answered under another id, and sets aside a job listed twice", async () => {
    const dashboard = await sim();
    const job = bookingJob(dashboard);
    const jobs = client(dashboard);
    const original = globalThis.fetch;
    const answer = (body: unknown) => async () =>
      new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });
    try {
      globalThis.fetch = answer({ id: job.id + 1, payload: {} });
      await expect(jobs.getJob(job.id)).rejects.toThrow(ProtocolError);
      const entry = {
        id: 5,
        payload: { hardware: { t1: { id: "hpe3", power: "on", lab_token: "null" } } },
      };
      globalThis.fetch = answer([entry, entry]);
      expect((await jobs.listJobs("new")).map((j) => j.id)).toEqual([5]);
    } finally {
      globalThis.fetch = original;
    }
  });

  it("does not follow a redirect of a status post", async () => {
    const server = createServer((req, res) => {
      res.statusCode = 302;
      res.setHeader("Location", req.url ?? "/");
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const jobs = new LaasJobsDashboard({ url, lab: LAB, token: new Secret(TOKEN) }, silentLogger);
    await expect(jobs.postStatus(1, "t1", { status: 100 })).rejects.toThrow(/answered 302/);
  });

  it("a post to a dashboard that refuses the connection is transient, its outcome known", async () => {
    const dashboard = await sim();
    const jobs = client(dashboard);
    await dashboard.close();
    cleanups.length = 0;
    const failed = jobs.postStatus(1, "t1", { status: 100 });
    await expect(failed).rejects.toThrow(TransientError);
    await expect(failed).rejects.not.toThrow(OutcomeUnknownError);
  });
});
