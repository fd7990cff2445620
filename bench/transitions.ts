/**
 * State transitions and Lambda invocations per booking lifecycle (provision then release), with
 * imaging of 5, 20 and 60 minutes and an installer of 10 and 90 minutes, on virtual time.
 *
 * Baseline: the polling workflows (bench/baseline/*.asl.yaml), run by aws-local-stepfunctions,
 * their Wait states skipped and their looks answering "not yet" until the virtual clock has
 * passed the duration: each 15-second poll is a Wait, a look (a Lambda invocation) and a Choice.
 * Today: statemachines/*.asl.yaml on the local engine, the watcher's answer stood in by an
 * immediate SendTaskSuccess — the durations do not enter its count at all. Every step is a
 * stand-in: only what the engines do is counted (StateEntered and StateRetried events, as Step
 * Functions bills transitions; Task invocations).
 */
import { join } from "node:path";
import { StateMachine, type StateMachineDefinition } from "aws-local-stepfunctions";
import { stepHandlers } from "../functions/steps";
import { DynamoDbExecutionJournal } from "../lib/adapters/aws/dynamodb-journal";
import { createDynamoClient } from "../lib/adapters/aws/dynamodb-tables";
import { startEmbeddedDynamo } from "../lib/adapters/local/embedded-dynamodb";
import { LocalEngine, type StepHandler } from "../lib/adapters/local/local-engine";
import type { Phase } from "../lib/domain/booking";
import { silentLogger } from "../lib/log";
import "../lib/polyfills";
import { allStates, bindTasks, loadDefinition } from "../lib/workflow/definitions";

export interface Durations {
  imagingMinutes: number;
  installerMinutes: number;
  /** From the end of imaging until the host answers SSH. */
  bootMinutes: number;
}

export interface TransitionRow extends Durations {
  design: "callbacks" | "baseline";
  transitions: number;
  invocations: number;
  /** The watcher's invocations while this booking waited (once a minute on AWS, lab-wide). */
  watcherMinutes: number;
}

const POLL_SECONDS = 15;
const FIRST_HOST_PAUSE_SECONDS = 2;
const LONGEST_HOST_PAUSE_SECONDS = 60;

type Json = Record<string, unknown>;

/** The baseline's looks on a virtual clock: "done" once the time waited passes the duration. */
function baselineLooks(d: Durations, calls: { n: number }) {
  const later = "2099-01-01T00:00:00.000Z";
  const counted = (answer: (event: Json) => unknown): StepHandler =>
    (async (event: Json) => {
      calls.n += 1;
      return answer(event);
    }) as StepHandler;
  const handlers: Record<string, StepHandler> = {};
  for (const fn of [
    "postStatus",
    "buildPod",
    "removePod",
    "createVpnUser",
    "setHostAccess",
    "markReady",
    "markReleased",
    "handOver",
    "recordUndelivered",
    "revokeAccess",
    "undoAccess",
    "recordFailure",
  ]) {
    handlers[fn] = counted(() => ({}));
  }
  handlers.startImaging = counted((event) => ({
    fogHostId: "1",
    deadline: later,
    pollSeconds: POLL_SECONDS,
    waited: 0,
    imagingSeconds: (event.phase === "release" ? d.imagingMinutes : d.imagingMinutes) * 60,
    done: false,
  }));
  handlers.checkImaging = counted((event) => {
    const imaging = event.imaging as Json;
    const waited = Number(imaging.waited) + POLL_SECONDS;
    return { ...imaging, waited, done: waited >= Number(imaging.imagingSeconds) };
  });
  handlers.checkHost = counted((event) => {
    const reach = (event.reach as Json | undefined) ?? {
      waited: 0,
      waitSeconds: FIRST_HOST_PAUSE_SECONDS / 2,
    };
    if (Number(reach.waited) >= d.bootMinutes * 60) return { ...reach, done: true };
    const waitSeconds = Math.min(Number(reach.waitSeconds) * 2, LONGEST_HOST_PAUSE_SECONDS);
    return { ...reach, done: false, waitSeconds, waited: Number(reach.waited) + waitSeconds };
  });
  handlers.startInstaller = counted(() => ({
    running: true,
    done: false,
    base: "/var/lib/laas/deploy",
    deadline: later,
    pollSeconds: POLL_SECONDS,
    waited: 0,
  }));
  handlers.checkInstaller = counted((event) => {
    const install = event.install as Json;
    const waited = Number(install.waited) + POLL_SECONDS;
    return { ...install, waited, done: waited >= d.installerMinutes * 60 };
  });
  return handlers;
}

async function baselineRun(
  phase: Phase,
  d: Durations,
): Promise<{ transitions: number; invocations: number }> {
  const calls = { n: 0 };
  const { definition, bindings } = bindTasks(
    loadDefinition(join(import.meta.dirname, "baseline", `${phase}.asl.yaml`)),
  );
  const looks = baselineLooks(d, calls);
  const overrides: Record<string, StepHandler> = {};
  for (const { stateName, functionName } of bindings) {
    const handler = looks[functionName];
    if (!handler) throw new Error(`baseline: no stand-in for ${functionName}`);
    overrides[stateName] = handler;
  }
  const waits: Record<string, number> = {};
  for (const [name, state] of allStates(definition)) if (state.Type === "Wait") waits[name] = 0;
  const machine = new StateMachine(definition as unknown as StateMachineDefinition, {
    validationOptions: { checkArn: true, checkPaths: true },
  });
  const run = machine.run(
    { bookingId: "1", hostName: "pod1", phase, generation: 1 },
    { overrides: { taskResourceLocalHandlers: overrides as never, waitTimeOverrides: waits } },
  );
  let transitions = 0;
  const counting = (async () => {
    for await (const event of run.eventLogs) {
      if (event.type === "StateEntered" || event.type === "StateRetried") transitions += 1;
    }
  })();
  await run.result;
  await counting;
  return { transitions, invocations: calls.n };
}

async function callbackRun(
  engine: LocalEngine,
  journal: DynamoDbExecutionJournal,
  phase: Phase,
  calls: { n: number },
): Promise<{ transitions: number; invocations: number }> {
  const before = calls.n;
  const name = `booking-1-${phase}-${Math.random().toString(36).slice(2)}`;
  await engine.start(phase, name, { bookingId: "1", hostName: "pod1", phase, generation: 1 });
  for (;;) {
    const record = await journal.get(name);
    if (record && record.status !== "RUNNING") {
      if (record.status !== "SUCCEEDED") throw new Error(`${name} ended ${record.status}`);
      return { transitions: record.transitions, invocations: calls.n - before };
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function transitions(grid: Durations[]): Promise<TransitionRow[]> {
  const dynamo = await startEmbeddedDynamo({ path: null });
  const journal = await DynamoDbExecutionJournal.open(
    createDynamoClient({ endpoint: dynamo.endpoint, credentials: dynamo.credentials }),
  );
  const calls = { n: 0 };
  let engine: LocalEngine | null = null;
  const handlers: Record<string, StepHandler> = {};
  for (const fn of Object.keys(stepHandlers)) {
    handlers[fn] = (async (event: Json) => {
      calls.n += 1;
      // The watcher's answer, as soon as the wait is registered: durations do not matter here.
      if (fn === "awaitEvent") await engine?.sendTaskSuccess(String(event.taskToken), {});
      return {};
    }) as StepHandler;
  }
  engine = new LocalEngine({ handlers, journal, logger: silentLogger });
  const rows: TransitionRow[] = [];
  try {
    for (const d of grid) {
      const watcherMinutes = 2 * d.imagingMinutes + d.bootMinutes + d.installerMinutes;
      const sum = (a: { transitions: number; invocations: number }, b: typeof a) => ({
        transitions: a.transitions + b.transitions,
        invocations: a.invocations + b.invocations,
      });
      const baseline = sum(await baselineRun("provision", d), await baselineRun("release", d));
      const today = sum(
        await callbackRun(engine, journal, "provision", calls),
        await callbackRun(engine, journal, "release", calls),
      );
      rows.push({ ...d, design: "baseline", ...baseline, watcherMinutes: 0 });
      rows.push({ ...d, design: "callbacks", ...today, watcherMinutes });
    }
  } finally {
    await engine.drain(0);
    await dynamo.close();
  }
  return rows;
}
