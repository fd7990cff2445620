/**
 * The local engine keeps Step Functions' semantics over the very ASL files AWS runs: callback
 * tasks (token, success with output, failure with error and cause reaching the Catch, heartbeat
 * timeout, overall timeout), execution names started once, durable executions that another
 * engine resumes at the state they were in, and one owner per execution. The steps here are
 * stand-ins that record what they were given; the journal is the real DynamoDB adapter on
 * dynalite.
 */
import { spawn } from "node:child_process";
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { stepHandlers } from "../functions/steps";
import { DynamoDbExecutionJournal } from "../lib/adapters/aws/dynamodb-journal";
import { createDynamoClient } from "../lib/adapters/aws/dynamodb-tables";
import { type EmbeddedDynamo, startEmbeddedDynamo } from "../lib/adapters/local/embedded-dynamodb";
import { ExecutionHistoryFiles } from "../lib/adapters/local/history-files";
import type { ExecutionJournal } from "../lib/adapters/local/journal";
import { LocalEngine, type StepHandler } from "../lib/adapters/local/local-engine";
import type { ProcessId } from "../lib/adapters/local/process-identity";
import { timelineOf } from "../lib/domain/execution-history";
import { silentLogger } from "../lib/log";
import type { PhaseInput } from "../lib/ports/engine";
import { repoRoot } from "../sim/lab";
import { runProcess } from "./helpers/process";
import { waitFor } from "./helpers/wait";

interface Call {
  fn: string;
  event: Record<string, unknown>;
}

/** Stand-in steps: every function of the ASL, recording its event; awaitEvent hands tokens out. */
class Steps {
  readonly calls: Call[] = [];
  readonly tokens: { event: string; token: string }[] = [];
  /** What a function answers (default {}); a function may throw instead. */
  readonly answers = new Map<string, (event: Record<string, unknown>) => Promise<unknown>>();

  handlers(): Record<string, StepHandler> {
    const handlers: Record<string, StepHandler> = {};
    for (const fn of Object.keys(stepHandlers)) {
      handlers[fn] = (async (event: Record<string, unknown>) => {
        this.calls.push({ fn, event });
        if (fn === "awaitEvent") {
          this.tokens.push({ event: String(event.event), token: String(event.taskToken) });
        }
        const answer = this.answers.get(fn);
        return answer ? answer(event) : {};
      }) as StepHandler;
    }
    return handlers;
  }

  called(fn: string): Call[] {
    return this.calls.filter((c) => c.fn === fn);
  }

  /** The token of the latest registration of `event`, once there is one. */
  tokenOf(event: string, nth = 0): Promise<string> {
    return waitFor(
      `registration ${nth} of ${event}`,
      () => this.tokens.filter((t) => t.event === event).at(nth)?.token,
    );
  }
}

const INPUT: PhaseInput = { bookingId: "7", hostName: "pod1", phase: "provision", generation: 1 };
const NAME = "booking-7-provision-1";

let dynamo: EmbeddedDynamo;
let journal: ExecutionJournal;
let tables = 0;

beforeAll(async () => {
  dynamo = await startEmbeddedDynamo({ path: null });
});
afterAll(async () => dynamo?.close());

/** A journal of its own for each test (a fresh table on the shared dynalite). */
async function freshJournal(): Promise<ExecutionJournal> {
  tables += 1;
  return DynamoDbExecutionJournal.open(
    createDynamoClient({ endpoint: dynamo.endpoint, credentials: dynamo.credentials }),
    `executions-${process.pid}-${tables}`,
  );
}

function engine(
  steps: Steps,
  options: {
    owner?: ProcessId;
    heartbeatOverridesMs?: Record<string, number>;
    timeoutOverridesMs?: Record<string, number>;
  } = {},
): LocalEngine {
  return new LocalEngine({
    handlers: steps.handlers(),
    journal,
    logger: silentLogger,
    retryOverridesMs: { AwaitImaging: 10, AwaitHost: 10, AwaitInstaller: 10 },
    ...options,
  });
}

async function ended(e: LocalEngine, name = NAME) {
  return waitFor(`${name} to end`, async () => {
    const status = await e.status(name);
    return status && status !== "RUNNING" ? status : undefined;
  });
}

describe("callback tasks", () => {
  let steps: Steps;
  let local: LocalEngine;
  beforeEach(async () => {
    journal = await freshJournal();
    steps = new Steps();
  });
  afterEach(async () => {
    await local?.drain(0);
  });

  it("hand a token to the step and go on with the output SendTaskSuccess gives", async () => {
    local = engine(steps);
    expect(await local.start("provision", NAME, INPUT)).toEqual({ started: true });
    // A name is started once, as in Step Functions.
    expect(await local.start("provision", NAME, INPUT)).toEqual({ started: false });
    const token = await steps.tokenOf("imaged");
    const registration = steps.called("awaitEvent")[0]!.event;
    expect(registration).toMatchObject({ ...INPUT, event: "imaged", taskToken: token });
    // Nothing runs while the task waits.
    await sleep(100);
    expect(steps.called("buildPod")).toEqual([]);
    expect(await local.sendTaskSuccess(token, { deployed: "2026-12-01 10:00:00" })).toBe(
      "accepted",
    );
    // The token is spent: a second answer finds nothing waiting.
    expect(await local.sendTaskSuccess(token, {})).toBe("gone");
    expect(await local.sendTaskHeartbeat(token)).toBe("gone");
    await local.sendTaskSuccess(await steps.tokenOf("host-up"), { address: "10.0.0.5" });
    await waitFor("BuildPod", () => steps.called("buildPod")[0]);
    await local.sendTaskSuccess(await steps.tokenOf("installer-done"), { exitCode: 0 });
    expect(await ended(local)).toBe("SUCCEEDED");
    // The result went where the ASL's ResultPath says: the next steps got the state input.
    expect(steps.called("buildPod")[0]!.event).toMatchObject({
      imaged: { deployed: "2026-12-01 10:00:00" },
      reach: { address: "10.0.0.5" },
    });
  });

  it("fail with the error and cause SendTaskFailure gives, which reach the Catch", async () => {
    local = engine(steps);
    await local.start("provision", NAME, INPUT);
    const token = await steps.tokenOf("imaged");
    expect(await local.sendTaskFailure(token, "ImagingFailed", "FOG cancelled the task")).toBe(
      "accepted",
    );
    expect(await ended(local)).toBe("FAILED");
    const caught = { Error: "ImagingFailed", Cause: "FOG cancelled the task" };
    expect(steps.called("undoAccess")[0]!.event).toMatchObject({ error: caught });
    expect(steps.called("recordFailure")[0]!.event).toMatchObject({ error: caught });
    expect(steps.called("buildPod")).toEqual([]);
    const record = await journal.get(NAME);
    expect(record).toMatchObject({ status: "FAILED", error: "ProvisionFailed" });
  });

  it("take a token answered before the step that hands it out has returned", async () => {
    local = engine(steps);
    // awaitEvent itself finds the event came already (a wait run again after a restart).
    steps.answers.set("awaitEvent", async (event) => {
      await local.sendTaskSuccess(String(event.taskToken), { early: String(event.event) });
      return { waiting: false };
    });
    await local.start("provision", NAME, INPUT);
    expect(await ended(local)).toBe("SUCCEEDED");
    expect(steps.called("buildPod")[0]!.event).toMatchObject({ imaged: { early: "imaged" } });
  });

  it("time out without heartbeats, register again (the Retry), then reach the Catch", async () => {
    local = engine(steps, { heartbeatOverridesMs: { AwaitImaging: 150 } });
    await local.start("provision", NAME, INPUT);
    await steps.tokenOf("imaged");
    expect(await ended(local)).toBe("FAILED");
    // One registration and the Retry's two more, each with its own token.
    const tokens = steps.tokens.filter((t) => t.event === "imaged").map((t) => t.token);
    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(3);
    expect(steps.called("recordFailure")[0]!.event).toMatchObject({
      error: { Error: "States.HeartbeatTimeout" },
    });
  });

  it("keep waiting while heartbeats come, and time out at TimeoutSeconds all the same", async () => {
    local = engine(steps, {
      heartbeatOverridesMs: { AwaitImaging: 150 },
      timeoutOverridesMs: { AwaitImaging: 700 },
    });
    await local.start("provision", NAME, INPUT);
    const token = await steps.tokenOf("imaged");
    const started = Date.now();
    // Heartbeats every 50 ms: the 150 ms heartbeat timeout never comes.
    while ((await local.status(NAME)) === "RUNNING" && Date.now() - started < 5_000) {
      await local.sendTaskHeartbeat(token);
      await sleep(50);
    }
    expect(await ended(local)).toBe("FAILED");
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    expect(steps.tokens.filter((t) => t.event === "imaged")).toHaveLength(1);
    expect(steps.called("recordFailure")[0]!.event).toMatchObject({
      error: { Error: "States.Timeout" },
    });
  });

  it("fail like the step when the step that hands the token out fails", async () => {
    local = engine(steps);
    steps.answers.set("awaitEvent", async () => {
      const refused = new Error("booking 7 is released");
      refused.name = "Superseded";
      throw refused;
    });
    await local.start("provision", NAME, INPUT);
    expect(await ended(local)).toBe("FAILED");
    expect(steps.called("recordFailure")[0]!.event).toMatchObject({
      error: { Error: "Superseded", Cause: "booking 7 is released" },
    });
  });

  it("answer `gone` for a token nobody handed out", async () => {
    local = engine(steps);
    expect(await local.sendTaskSuccess("no-such-token", {})).toBe("gone");
    expect(await local.sendTaskFailure("no-such-token", "E", "c")).toBe("gone");
  });
});

/** A process that runs for the test's length: a live owner other than this process. */
function otherProcess(): { id: Promise<ProcessId>; kill(): void } {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  const id = (async () => {
    const pid = child.pid;
    if (pid === undefined) throw new Error("could not start sleep");
    const { readFileSync } = await import("node:fs");
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    return { pid, startTicks: ticks };
  })();
  return { id, kill: () => child.kill("SIGKILL") };
}

describe("durable executions, one owner each", () => {
  let steps: Steps;
  beforeEach(async () => {
    journal = await freshJournal();
    steps = new Steps();
  });

  it("are resumed by the next owner at the state they were in, not started over", async () => {
    const first = engine(steps);
    await first.start("provision", NAME, INPUT);
    await answerWait(first, steps, "imaged", { deployed: "d1" });
    await steps.tokenOf("host-up");
    // The process goes away with the execution waiting for the host (a drain hands it over).
    expect(await first.drain(0)).toEqual({ finished: [], handedOver: [NAME] });
    expect(await journal.get(NAME)).toMatchObject({
      status: "RUNNING",
      owner: null,
      position: { state: "AwaitHost" },
    });

    const next = engine(steps);
    expect(await next.tick({ adopt: true })).toEqual({ adopted: [NAME], stopped: [] });
    // Resumed at AwaitHost: the wait registers again; nothing before it ran again.
    await answerWait(next, steps, "host-up", { address: "10.0.0.5" }, 1);
    await answerWait(next, steps, "installer-done", { exitCode: 0 });
    expect(await ended(next)).toBe("SUCCEEDED");
    expect(steps.called("startImaging")).toHaveLength(1);
    expect(steps.tokens.filter((t) => t.event === "imaged")).toHaveLength(1);
    // The state input survived the hand-over: the imaging result is still there.
    expect(steps.called("buildPod")[0]!.event).toMatchObject({ imaged: { deployed: "d1" } });
  });

  it("left by an owner that is gone are adopted; one whose owner runs are not", async () => {
    const sleeper = otherProcess();
    try {
      const owner = await sleeper.id;
      const delegate = engine(steps, { owner });
      expect(delegate.runsHere).toBe(false);
      // Handed to the owner: recorded, not run here.
      expect(await delegate.start("provision", NAME, INPUT)).toEqual({ started: true });
      await sleep(100);
      expect(steps.calls).toEqual([]);
      expect(await journal.get(NAME)).toMatchObject({ status: "RUNNING", owner });

      const here = engine(steps);
      // Its owner lives: not ours to take.
      expect(await here.tick({ adopt: true })).toEqual({ adopted: [], stopped: [] });
      sleeper.kill();
      await waitFor("the owner to die", async () =>
        (await here.tick({ adopt: true })).adopted.includes(NAME) ? true : undefined,
      );
      await steps.tokenOf("imaged");
      expect(steps.called("postStatus")).toHaveLength(1);
      await here.drain(0);
    } finally {
      sleeper.kill();
    }
  });

  it("are stopped by their owner when another process asks", async () => {
    const sleeper = otherProcess();
    try {
      // Another process owns it: a stop from here is a request on its record.
      const owner = await sleeper.id;
      await engine(steps, { owner }).start("provision", NAME, INPUT);
      const here = engine(steps);
      await here.stop(NAME, "booking ended during provisioning");
      expect(await journal.get(NAME)).toMatchObject({
        status: "RUNNING",
        stopRequested: "booking ended during provisioning",
      });
      // The next owner honours it instead of running the execution.
      sleeper.kill();
      await waitFor("the owner to die", async () =>
        (await here.tick({ adopt: true })).stopped.includes(NAME) ? true : undefined,
      );
      expect(await journal.get(NAME)).toMatchObject({
        status: "ABORTED",
        cause: "booking ended during provisioning",
      });
      expect(steps.calls).toEqual([]);
    } finally {
      sleeper.kill();
    }
  });

  it("running here stop at the owner's next look when a request is on their record", async () => {
    const owner = engine(steps);
    await owner.start("provision", NAME, INPUT);
    await steps.tokenOf("imaged");
    await journal.update(NAME, (r) => ({ ...r, stopRequested: "booking ended" }));
    expect(await owner.tick({ adopt: false })).toEqual({ adopted: [], stopped: [NAME] });
    expect(await journal.get(NAME)).toMatchObject({ status: "ABORTED", cause: "booking ended" });
    expect(owner.running()).toEqual([]);
  });
});

async function answerWait(
  e: LocalEngine,
  steps: Steps,
  event: string,
  output: Record<string, string | number>,
  nth = 0,
): Promise<void> {
  const token = await steps.tokenOf(event, nth);
  expect(await e.sendTaskSuccess(token, output)).toBe("accepted");
}

describe("the engine's own guards", () => {
  let steps: Steps;
  beforeEach(async () => {
    journal = await freshJournal();
    steps = new Steps();
  });

  it("lets a retry after States.Timeout wait for the attempt that timed out, never run beside it", async () => {
    // A machine of one Task with a 1 s TimeoutSeconds, retried once, whose step takes 1.5 s.
    const root = await mkdtemp(join(tmpdir(), "laas-engine-root-"));
    try {
      await mkdir(join(root, "statemachines"));
      const slow = {
        StartAt: "Slow",
        States: {
          Slow: {
            Type: "Task",
            Resource: { "Fn::GetAtt": ["buildPod", "Arn"] },
            TimeoutSeconds: 1,
            Retry: [{ ErrorEquals: ["States.Timeout"], IntervalSeconds: 1, MaxAttempts: 1 }],
            Catch: [{ ErrorEquals: ["States.ALL"], Next: "Done" }],
            Next: "Done",
          },
          Done: { Type: "Succeed" },
        },
      };
      for (const phase of ["provision", "release"]) {
        await writeFile(join(root, "statemachines", `${phase}.asl.yaml`), stringify(slow));
      }
      let running = 0;
      let most = 0;
      steps.answers.set("buildPod", async () => {
        running += 1;
        most = Math.max(most, running);
        await sleep(1_500);
        running -= 1;
        return {};
      });
      const local = new LocalEngine({
        handlers: steps.handlers(),
        journal,
        logger: silentLogger,
        root,
        retryOverridesMs: { Slow: 10 },
      });
      await local.start("provision", NAME, INPUT);
      expect(await ended(local)).toBe("SUCCEEDED");
      // Both attempts ran (the second after the first timed out), one after the other.
      expect(steps.called("buildPod")).toHaveLength(2);
      expect(most).toBe(1);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("never adopts an execution that has just ended here while its end is being written", async () => {
    // A journal whose writes of an ended execution take a while: the window a look at the
    // journal would otherwise fall into.
    const slowEnds: ExecutionJournal = {
      create: (record) => journal.create(record),
      get: (name) => journal.get(name),
      list: () => journal.list(),
      remove: (name, ifVersion) => journal.remove(name, ifVersion),
      update: async (name, change) => {
        const current = await journal.get(name);
        const next = current && change(current);
        if (next && next.status !== "RUNNING") await sleep(300);
        return journal.update(name, change);
      },
    };
    const local = new LocalEngine({
      handlers: steps.handlers(),
      journal: slowEnds,
      logger: silentLogger,
    });
    steps.answers.set("awaitEvent", async (event) => {
      await local.sendTaskSuccess(String(event.taskToken), {});
      return {};
    });
    await local.start("provision", NAME, INPUT);
    const adopted: string[] = [];
    while ((await journal.get(NAME))?.status === "RUNNING") {
      adopted.push(...(await local.tick({ adopt: true })).adopted);
      await sleep(10);
    }
    expect(adopted).toEqual([]);
    expect(steps.called("markReady")).toHaveLength(1);
  });

  it("ends a handed-over wait, leaving no timer of it behind to keep the process alive", async () => {
    // The process hands a waiting execution over and returns: it must exit by itself (the wait's
    // 12-hour TimeoutSeconds must not keep it alive).
    const ran = await runProcess(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "test", "fixtures", "hand-over-and-exit.ts")],
      { cwd: repoRoot, timeoutMs: 20_000 },
    );
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toContain("handed over: booking-1-provision-1");
  });
});

describe("execution history", () => {
  let steps: Steps;
  let dir: string;
  beforeEach(async () => {
    journal = await freshJournal();
    steps = new Steps();
    dir = await mkdtemp(join(tmpdir(), "laas-history-"));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  function recording(options: { heartbeatOverridesMs?: Record<string, number> } = {}) {
    return new LocalEngine({
      handlers: steps.handlers(),
      journal,
      history: new ExecutionHistoryFiles(dir),
      logger: silentLogger,
      retryOverridesMs: { AwaitImaging: 10, AwaitHost: 10, AwaitInstaller: 10 },
      ...options,
    });
  }

  it("tells each step's start, end, wait and heartbeats, and the execution's end", async () => {
    const local = recording();
    await local.start("provision", NAME, INPUT);
    const token = await steps.tokenOf("imaged");
    expect(await local.sendTaskHeartbeat(token)).toBe("accepted");
    expect(await local.sendTaskHeartbeat(token)).toBe("accepted");
    await local.sendTaskSuccess(token, {});
    await answerWait(local, steps, "host-up", { address: "10.0.0.5" });
    await answerWait(local, steps, "installer-done", { exitCode: 0 });
    expect(await ended(local)).toBe("SUCCEEDED");
    const events = (await local.history(NAME)) ?? [];
    expect(events[0]).toMatchObject({ type: "ExecutionStarted" });
    expect(events.at(-1)).toMatchObject({ type: "ExecutionSucceeded" });
    const timeline = timelineOf(NAME, events);
    expect(timeline.status).toBe("SUCCEEDED");
    const imaging = timeline.steps.find((s) => s.state === "AwaitImaging");
    expect(imaging).toMatchObject({ outcome: "succeeded", heartbeats: 2, attempts: 1 });
    expect(imaging?.waitingSince).not.toBeNull();
    expect(imaging?.exitedAt).not.toBeNull();
    // Every Task of the run is a row, in the order entered, each ended.
    const names = timeline.steps.map((s) => s.state);
    expect(names.indexOf("AwaitImaging")).toBeLessThan(names.indexOf("BuildPod"));
    expect(timeline.steps.every((s) => s.outcome === "succeeded")).toBe(true);
    // Only what happened: no state's input or output is in the file.
    const file = await readFile(join(dir, `${NAME}.jsonl`), "utf8");
    expect(file).not.toContain("10.0.0.5");
  });

  it("tells the timeouts, the retries, the catch and the cause of a failure", async () => {
    const local = recording({ heartbeatOverridesMs: { AwaitImaging: 150 } });
    await local.start("provision", NAME, INPUT);
    expect(await ended(local)).toBe("FAILED");
    const timeline = timelineOf(NAME, (await local.history(NAME)) ?? []);
    const imaging = timeline.steps.find((s) => s.state === "AwaitImaging");
    expect(imaging).toMatchObject({
      attempts: 3,
      outcome: "caught",
      error: "States.HeartbeatTimeout",
    });
    expect(timeline.status).toBe("FAILED");
    expect(timeline.error).toBe("ProvisionFailed");
  });

  it("goes on in the next owner's process: one row for the state it was resumed in", async () => {
    const first = recording();
    await first.start("provision", NAME, INPUT);
    await answerWait(first, steps, "imaged", { deployed: "d1" });
    await steps.tokenOf("host-up");
    await first.drain(0);
    const next = recording();
    await next.tick({ adopt: true });
    await answerWait(next, steps, "host-up", { address: "10.0.0.5" }, 1);
    await answerWait(next, steps, "installer-done", { exitCode: 0 });
    expect(await ended(next)).toBe("SUCCEEDED");
    const timeline = timelineOf(NAME, (await next.history(NAME)) ?? []);
    expect(timeline.resumes).toHaveLength(1);
    expect(timeline.steps.filter((s) => s.state === "AwaitHost")).toHaveLength(1);
    expect(timeline.status).toBe("SUCCEEDED");
  });

  it("skips a line cut short by a crash, and refuses a name that is not an execution's", async () => {
    const files = new ExecutionHistoryFiles(dir);
    files.append(NAME, {
      type: "ExecutionStarted",
      at: "t",
      state: null,
      error: null,
      cause: null,
    });
    await appendFile(join(dir, `${NAME}.jsonl`), '{"type":"StateEnt');
    expect(await files.read(NAME)).toEqual([
      { type: "ExecutionStarted", at: "t", state: null, error: null, cause: null },
    ]);
    expect(await files.read("booking-9-provision-1")).toBeNull();
    await expect(files.read("../listener")).rejects.toThrow(/not an execution name/);
  });
});
