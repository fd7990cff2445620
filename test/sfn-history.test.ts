/**
 * StepFunctionsEngine.history against a simulated GetExecutionHistory (sim/step-functions-history.ts)
 * through the real SDK client: histories written as Step Functions sends them, read back page by
 * page without their inputs and outputs, told as domain events, and shown by timelineOf.
 */
import {
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  InvalidToken,
  SFNClient,
} from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StepFunctionsEngine } from "../lib/adapters/aws/sfn-engine";
import {
  executionEventsOf,
  MAX_HISTORY_CAUSE_CHARS,
  MAX_HISTORY_ERROR_CHARS,
} from "../lib/adapters/aws/sfn-history";
import { type ExecutionEvent, timelineOf } from "../lib/domain/execution-history";
import {
  type StepFunctionsHistorySim,
  startStepFunctionsHistory,
  type WireHistoryEvent,
} from "../sim/step-functions-history";

const ACCOUNT = "arn:aws:states:us-east-1:123456789012";
const ARNS = {
  provision: `${ACCOUNT}:stateMachine:laas-dev-provision`,
  release: `${ACCOUNT}:stateMachine:laas-dev-release`,
};
const executionArn = (name: string) =>
  `${ACCOUNT}:execution:laas-dev-${name.includes("-release-") ? "release" : "provision"}:${name}`;

/** What the executions were given: it must never come back from history(). */
const SECRET = "root-password-Zq8v";
const DATA = JSON.stringify({ bookingId: "41", hostName: "fog-machine-4", rootPassword: SECRET });

/** 2025-10-09T08:53:20Z, and each event 1.375 s after the one before (the wire has fractions). */
const T0 = 1_760_000_000;
const STEP_SECONDS = 1.375;
const at = (index: number) => new Date((T0 + index * STEP_SECONDS) * 1000).toISOString();

type Step = [type: string, details?: Record<string, unknown>];

/** Events numbered as the service numbers them, each after the one before. */
function wire(steps: Step[]): WireHistoryEvent[] {
  return steps.map(([type, details], index) => ({
    timestamp: T0 + index * STEP_SECONDS,
    type,
    id: index + 1,
    previousEventId: index,
    ...details,
  }));
}

const functionArn = (name: string) =>
  `arn:aws:lambda:us-east-1:123456789012:function:laas-dev-${name}`;
const withData = { input: DATA, inputDetails: { truncated: false } };
const withOutput = { output: DATA, outputDetails: { truncated: false } };

const executionStarted: Step = [
  "ExecutionStarted",
  {
    executionStartedEventDetails: {
      ...withData,
      roleArn: "arn:aws:iam::123456789012:role/laas-dev-states",
    },
  },
];
const executionSucceeded: Step = [
  "ExecutionSucceeded",
  { executionSucceededEventDetails: withOutput },
];
const entered = (name: string, type = "TaskStateEntered"): Step => [
  type,
  { stateEnteredEventDetails: { name, ...withData } },
];
const exited = (name: string, type = "TaskStateExited"): Step => [
  type,
  { stateExitedEventDetails: { name, ...withOutput } },
];

// A Task whose Resource is a function's ARN.
const lambdaScheduled = (fn: string): Step => [
  "LambdaFunctionScheduled",
  {
    lambdaFunctionScheduledEventDetails: {
      resource: functionArn(fn),
      ...withData,
      timeoutInSeconds: 180,
    },
  },
];
const lambdaStarted: Step = ["LambdaFunctionStarted"];
const lambdaSucceeded: Step = [
  "LambdaFunctionSucceeded",
  { lambdaFunctionSucceededEventDetails: withOutput },
];
const lambdaFailed = (error: string, message: string): Step => [
  "LambdaFunctionFailed",
  {
    lambdaFunctionFailedEventDetails: {
      error,
      cause: JSON.stringify({
        errorType: error,
        errorMessage: message,
        trace: [`${error}: ${message}`],
      }),
    },
  },
];
const lambdaTask = (state: string, fn: string): Step[] => [
  entered(state),
  lambdaScheduled(fn),
  lambdaStarted,
  lambdaSucceeded,
  exited(state),
];

// A callback task: arn:aws:states:::lambda:invoke.waitForTaskToken.
const CALLBACK = { resourceType: "lambda", resource: "invoke.waitForTaskToken" };
const callbackScheduled: Step = [
  "TaskScheduled",
  {
    taskScheduledEventDetails: {
      ...CALLBACK,
      region: "us-east-1",
      parameters: JSON.stringify({
        FunctionName: functionArn("awaitEvent"),
        Payload: { bookingId: "41", event: "imaged", taskToken: "AQCEAAAAKgAAAA" },
      }),
      timeoutInSeconds: 43_200,
      heartbeatInSeconds: 600,
    },
  },
];
const callbackStarted: Step = ["TaskStarted", { taskStartedEventDetails: CALLBACK }];
const callbackSubmitted: Step = [
  "TaskSubmitted",
  {
    taskSubmittedEventDetails: {
      ...CALLBACK,
      output: JSON.stringify({ ExecutedVersion: "$LATEST", Payload: null, StatusCode: 200 }),
      outputDetails: { truncated: false },
    },
  },
];

const event = (
  index: number,
  type: ExecutionEvent["type"],
  state: string | null,
  error: string | null = null,
  cause: string | null = null,
): ExecutionEvent => ({ type, at: at(index), state, error, cause });

let sim: StepFunctionsHistorySim;
let client: SFNClient;
let engine: StepFunctionsEngine;

/** Serves `events` as the history of the execution `name`; answers its GetExecutionHistory calls. */
function serveEvents(name: string, events: WireHistoryEvent[]) {
  sim.histories.set(executionArn(name), events);
  return () =>
    sim.exchanges.filter((exchange) => exchange.request.executionArn === executionArn(name));
}

const serve = (name: string, steps: Step[]) => serveEvents(name, wire(steps));

beforeAll(async () => {
  sim = await startStepFunctionsHistory();
  client = new SFNClient({
    endpoint: sim.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "example-secret-key" },
  });
  engine = new StepFunctionsEngine(client, ARNS);
});

afterAll(async () => {
  client.destroy();
  await sim.close();
});

describe("StepFunctionsEngine.history", () => {
  it("tells a successful run, asking for no execution data", async () => {
    const name = "booking-41-release-1";
    const calls = serve(name, [
      executionStarted,
      ...lambdaTask("RemovePod", "removePod"),
      ...lambdaTask("MarkReleased", "markReleased"),
      entered("Released", "SucceedStateEntered"),
      exited("Released", "SucceedStateExited"),
      executionSucceeded,
    ]);

    const events = await engine.history(name);

    expect(events).toEqual([
      event(0, "ExecutionStarted", null),
      event(1, "StateEntered", "RemovePod"),
      event(5, "StateExited", "RemovePod"),
      event(6, "StateEntered", "MarkReleased"),
      event(10, "StateExited", "MarkReleased"),
      event(11, "StateEntered", "Released"),
      event(12, "StateExited", "Released"),
      event(13, "ExecutionSucceeded", null),
    ]);
    expect(calls().map((call) => call.request)).toEqual([
      { executionArn: executionArn(name), includeExecutionData: false, maxResults: 1000 },
    ]);
    expect(calls()[0]?.answer).not.toContain(SECRET);

    const timeline = timelineOf(name, events ?? []);
    expect(timeline).toMatchObject({ status: "SUCCEEDED", startedAt: at(0), endedAt: at(13) });
    expect(
      timeline.steps.map(({ state, attempts, outcome }) => ({ state, attempts, outcome })),
    ).toEqual([
      { state: "RemovePod", attempts: 1, outcome: "succeeded" },
      { state: "MarkReleased", attempts: 1, outcome: "succeeded" },
      { state: "Released", attempts: 1, outcome: "succeeded" },
    ]);
  });

  it("counts a Lambda task's failed attempts and its retries", async () => {
    const name = "booking-41-provision-1";
    serve(name, [
      executionStarted,
      entered("StartImaging"),
      lambdaScheduled("startImaging"),
      lambdaStarted,
      lambdaFailed("TransientError", "FOG answered 503"),
      lambdaScheduled("startImaging"),
      lambdaStarted,
      lambdaFailed("TransientError", "FOG did not answer in 10 s"),
      lambdaScheduled("startImaging"),
      lambdaStarted,
      lambdaSucceeded,
      exited("StartImaging"),
      ...lambdaTask("BuildPod", "buildPod"),
    ]);

    const events = (await engine.history(name)) ?? [];

    const cause = (message: string) =>
      JSON.stringify({
        errorType: "TransientError",
        errorMessage: message,
        trace: [`TransientError: ${message}`],
      });
    expect(events).toEqual([
      event(0, "ExecutionStarted", null),
      event(1, "StateEntered", "StartImaging"),
      event(4, "TaskFailed", "StartImaging", "TransientError", cause("FOG answered 503")),
      event(5, "TaskRetried", "StartImaging"),
      event(7, "TaskFailed", "StartImaging", "TransientError", cause("FOG did not answer in 10 s")),
      event(8, "TaskRetried", "StartImaging"),
      event(11, "StateExited", "StartImaging"),
      event(12, "StateEntered", "BuildPod"),
      event(16, "StateExited", "BuildPod"),
    ]);
    const timeline = timelineOf(name, events);
    expect(timeline.status).toBe("RUNNING");
    expect(timeline.steps).toMatchObject([
      { state: "StartImaging", attempts: 3, outcome: "succeeded", exitedAt: at(11) },
      { state: "BuildPod", attempts: 1, outcome: "succeeded" },
    ]);
  });

  it("shows a callback task waiting for its token, again after a heartbeat timed out", async () => {
    const name = "booking-42-provision-1";
    serve(name, [
      executionStarted,
      ...lambdaTask("StartImaging", "startImaging"),
      entered("AwaitImaging"),
      callbackScheduled,
      callbackStarted,
      callbackSubmitted,
      [
        "TaskTimedOut",
        { taskTimedOutEventDetails: { ...CALLBACK, error: "States.HeartbeatTimeout" } },
      ],
      callbackScheduled,
      callbackStarted,
      callbackSubmitted,
    ]);

    const events = (await engine.history(name)) ?? [];

    expect(events.slice(3)).toEqual([
      event(6, "StateEntered", "AwaitImaging"),
      event(9, "CallbackWaiting", "AwaitImaging"),
      event(10, "TaskTimedOut", "AwaitImaging", "States.HeartbeatTimeout", null),
      event(11, "TaskRetried", "AwaitImaging"),
      event(13, "CallbackWaiting", "AwaitImaging"),
    ]);
    const timeline = timelineOf(name, events);
    expect(timeline.status).toBe("RUNNING");
    expect(timeline.steps[1]).toMatchObject({
      state: "AwaitImaging",
      attempts: 2,
      outcome: "running",
      waitingSince: at(9),
      exitedAt: null,
      // Step Functions records no heartbeat.
      heartbeats: 0,
    });
  });

  it("does not take a .sync task's submission for a callback wait", async () => {
    const name = "booking-43-provision-1";
    const sync = { resourceType: "ecs", resource: "runTask.sync" };
    serve(name, [
      executionStarted,
      entered("RunInstaller"),
      [
        "TaskScheduled",
        { taskScheduledEventDetails: { ...sync, region: "us-east-1", parameters: "{}" } },
      ],
      ["TaskStarted", { taskStartedEventDetails: sync }],
      ["TaskSubmitted", { taskSubmittedEventDetails: { ...sync, ...withOutput } }],
    ]);

    expect(await engine.history(name)).toEqual([
      event(0, "ExecutionStarted", null),
      event(1, "StateEntered", "RunInstaller"),
    ]);
  });

  it("tells a failed execution: the attempt caught, the way to the Fail state, the cause", async () => {
    const name = "booking-44-provision-2";
    const fogCause = JSON.stringify({
      errorType: "FogError",
      errorMessage: "fog-machine-4 is not in FOG",
      trace: ["FogError: fog-machine-4 is not in FOG"],
    });
    const failedCause = "The failure was recorded on the booking; see its `failure` field.";
    serve(name, [
      executionStarted,
      entered("StartImaging"),
      lambdaScheduled("startImaging"),
      lambdaStarted,
      lambdaFailed("FogError", "fog-machine-4 is not in FOG"),
      exited("StartImaging"),
      ...lambdaTask("UndoAccess", "undoAccess"),
      ...lambdaTask("RecordFailure", "recordFailure"),
      entered("ProvisionFailed", "FailStateEntered"),
      [
        "ExecutionFailed",
        { executionFailedEventDetails: { error: "ProvisionFailed", cause: failedCause } },
      ],
    ]);

    const events = (await engine.history(name)) ?? [];

    expect(events).toContainEqual(event(4, "TaskFailed", "StartImaging", "FogError", fogCause));
    expect(events.at(-1)).toEqual(
      event(17, "ExecutionFailed", null, "ProvisionFailed", failedCause),
    );
    // The failed attempt belongs to StartImaging only: UndoAccess's first attempt is no retry.
    expect(events.filter((e) => e.type === "TaskRetried")).toEqual([]);
    const timeline = timelineOf(name, events);
    expect(timeline).toMatchObject({
      status: "FAILED",
      endedAt: at(17),
      error: "ProvisionFailed",
      cause: failedCause,
    });
    expect(timeline.steps).toEqual([
      {
        state: "StartImaging",
        enteredAt: at(1),
        exitedAt: at(5),
        attempts: 1,
        heartbeats: 0,
        lastHeartbeatAt: null,
        waitingSince: null,
        outcome: "caught",
        error: "FogError",
        cause: fogCause,
      },
      expect.objectContaining({
        state: "UndoAccess",
        attempts: 1,
        outcome: "succeeded",
        error: null,
      }),
      expect.objectContaining({ state: "RecordFailure", attempts: 1, outcome: "succeeded" }),
      expect.objectContaining({
        state: "ProvisionFailed",
        enteredAt: at(16),
        exitedAt: at(17),
        outcome: "failed",
        error: "ProvisionFailed",
        cause: failedCause,
      }),
    ]);
  });

  it("maps every way an attempt ends without a result, and the retries after them", async () => {
    const name = "booking-45-provision-1";
    serve(name, [
      executionStarted,
      entered("StartImaging"),
      [
        "LambdaFunctionScheduleFailed",
        {
          lambdaFunctionScheduleFailedEventDetails: {
            error: "Lambda.ResourceNotFoundException",
            cause: "no such function",
          },
        },
      ],
      lambdaScheduled("startImaging"),
      [
        "LambdaFunctionStartFailed",
        {
          lambdaFunctionStartFailedEventDetails: {
            error: "Lambda.ServiceException",
            cause: "start failed",
          },
        },
      ],
      lambdaScheduled("startImaging"),
      lambdaStarted,
      [
        "LambdaFunctionTimedOut",
        { lambdaFunctionTimedOutEventDetails: { error: "States.Timeout", cause: "180 s" } },
      ],
      lambdaScheduled("startImaging"),
      lambdaStarted,
      lambdaSucceeded,
      exited("StartImaging"),
      entered("AwaitImaging"),
      callbackScheduled,
      [
        "TaskStartFailed",
        {
          taskStartFailedEventDetails: {
            ...CALLBACK,
            error: "Lambda.TooManyRequestsException",
            cause: "rate",
          },
        },
      ],
      callbackScheduled,
      callbackStarted,
      [
        "TaskSubmitFailed",
        {
          taskSubmitFailedEventDetails: {
            ...CALLBACK,
            error: "Lambda.SdkClientException",
            cause: "reset",
          },
        },
      ],
      callbackScheduled,
      callbackStarted,
      callbackSubmitted,
      [
        "TaskFailed",
        {
          taskFailedEventDetails: {
            ...CALLBACK,
            error: "ImagingTimeout",
            cause: "FOG never finished",
          },
        },
      ],
      [
        "ExecutionFailed",
        { executionFailedEventDetails: { error: "ImagingTimeout", cause: "FOG never finished" } },
      ],
    ]);

    const events = (await engine.history(name)) ?? [];

    expect(events.map(({ type, state, error }) => [type, state, error])).toEqual([
      ["ExecutionStarted", null, null],
      ["StateEntered", "StartImaging", null],
      ["TaskFailed", "StartImaging", "Lambda.ResourceNotFoundException"],
      ["TaskRetried", "StartImaging", null],
      ["TaskFailed", "StartImaging", "Lambda.ServiceException"],
      ["TaskRetried", "StartImaging", null],
      ["TaskTimedOut", "StartImaging", "States.Timeout"],
      ["TaskRetried", "StartImaging", null],
      ["StateExited", "StartImaging", null],
      ["StateEntered", "AwaitImaging", null],
      ["TaskFailed", "AwaitImaging", "Lambda.TooManyRequestsException"],
      ["TaskRetried", "AwaitImaging", null],
      ["TaskFailed", "AwaitImaging", "Lambda.SdkClientException"],
      ["TaskRetried", "AwaitImaging", null],
      ["CallbackWaiting", "AwaitImaging", null],
      ["TaskFailed", "AwaitImaging", "ImagingTimeout"],
      ["ExecutionFailed", null, "ImagingTimeout"],
    ]);
    expect(timelineOf(name, events).steps).toMatchObject([
      { state: "StartImaging", attempts: 4, outcome: "succeeded" },
      {
        state: "AwaitImaging",
        attempts: 3,
        outcome: "failed",
        error: "ImagingTimeout",
        cause: "FOG never finished",
      },
    ]);
  });

  it("tells the execution's end when it was aborted or timed out, and when it was redriven", async () => {
    serve("booking-46-provision-1", [
      executionStarted,
      entered("AwaitHost"),
      [
        "ExecutionAborted",
        { executionAbortedEventDetails: { error: "Superseded", cause: "booking 46 ended" } },
      ],
    ]);
    serve("booking-47-provision-1", [
      executionStarted,
      [
        "ExecutionTimedOut",
        { executionTimedOutEventDetails: { error: "States.Timeout", cause: "ceiling" } },
      ],
    ]);
    serve("booking-48-provision-1", [
      executionStarted,
      [
        "ExecutionFailed",
        { executionFailedEventDetails: { error: "States.Runtime", cause: "bad path" } },
      ],
      ["ExecutionRedriven", { executionRedrivenEventDetails: { redriveCount: 1 } }],
    ]);

    expect((await engine.history("booking-46-provision-1"))?.at(-1)).toEqual(
      event(2, "ExecutionAborted", null, "Superseded", "booking 46 ended"),
    );
    expect((await engine.history("booking-47-provision-1"))?.at(-1)).toEqual(
      event(1, "ExecutionTimedOut", null, "States.Timeout", "ceiling"),
    );
    expect((await engine.history("booking-48-provision-1"))?.at(-1)).toEqual(
      event(2, "ExecutionResumed", null),
    );
  });

  it("knows every kind of state Step Functions enters and leaves", async () => {
    const name = "booking-49-provision-1";
    const kinds = ["Task", "Choice", "Wait", "Pass", "Succeed", "Parallel", "Map"];
    serve(name, [
      executionStarted,
      ...kinds.flatMap((kind) => [
        entered(`A${kind}`, `${kind}StateEntered`),
        exited(`A${kind}`, `${kind}StateExited`),
      ]),
      entered("AFail", "FailStateEntered"),
    ]);

    const events = (await engine.history(name)) ?? [];

    expect(events.slice(1).map(({ type, state }) => `${type} ${state}`)).toEqual([
      ...kinds.flatMap((kind) => [`StateEntered A${kind}`, `StateExited A${kind}`]),
      "StateEntered AFail",
    ]);
  });

  it("cuts an error to 256 characters and a cause to 2000", async () => {
    const name = "booking-50-provision-1";
    const error = `E${"r".repeat(400)}`;
    const cause = `C${"x".repeat(5_000)}`;
    serve(name, [
      executionStarted,
      entered("StartImaging"),
      lambdaScheduled("startImaging"),
      ["LambdaFunctionFailed", { lambdaFunctionFailedEventDetails: { error, cause } }],
      ["ExecutionFailed", { executionFailedEventDetails: { error, cause } }],
    ]);

    const events = (await engine.history(name)) ?? [];

    for (const failed of [events[2], events[3]]) {
      expect(failed?.error).toBe(error.slice(0, MAX_HISTORY_ERROR_CHARS));
      expect(failed?.error).toHaveLength(256);
      expect(failed?.cause).toBe(cause.slice(0, MAX_HISTORY_CAUSE_CHARS));
      expect(failed?.cause).toHaveLength(2000);
    }
  });

  it("reads every page of a long history, oldest first, 1000 events a page", async () => {
    const name = "booking-51-provision-1";
    const states = Array.from(
      { length: 500 },
      (_, index) => `Step${String(index).padStart(3, "0")}`,
    );
    const calls = serve(name, [
      executionStarted,
      ...states.flatMap((state) => lambdaTask(state, "postStatus")),
      executionSucceeded,
    ]);

    const events = (await engine.history(name)) ?? [];

    // 2502 events: pages of 1000, 1000 and 502, each asked with the token the one before gave.
    const requests = calls().map((call) => call.request);
    expect(requests).toHaveLength(3);
    expect(requests[0]?.nextToken).toBeUndefined();
    for (const [index, request] of requests.entries()) {
      expect(request).toMatchObject({ includeExecutionData: false, maxResults: 1000 });
      if (index > 0) {
        const before = JSON.parse(calls()[index - 1]?.answer ?? "{}") as { nextToken?: string };
        expect(request.nextToken).toBe(before.nextToken);
      }
    }
    expect(
      calls().map((call) => (JSON.parse(call.answer) as { events: unknown[] }).events.length),
    ).toEqual([1000, 1000, 502]);
    expect(calls().every((call) => !call.answer.includes(SECRET))).toBe(true);

    expect(events).toHaveLength(2 + 2 * states.length);
    expect(events[0]).toEqual(event(0, "ExecutionStarted", null));
    expect(events.at(-1)).toEqual(event(2501, "ExecutionSucceeded", null));
    const timeline = timelineOf(name, events);
    expect(timeline.status).toBe("SUCCEEDED");
    expect(timeline.steps.map((step) => step.state)).toEqual(states);
    expect(
      timeline.steps.every((step) => step.attempts === 1 && step.outcome === "succeeded"),
    ).toBe(true);
  });

  it("answers null for an execution Step Functions does not know", async () => {
    expect(await engine.history("booking-404-provision-1")).toBeNull();
    expect(sim.exchanges.at(-1)).toMatchObject({
      status: 400,
      request: { executionArn: executionArn("booking-404-provision-1") },
    });
  });

  it("throws any other refusal", async () => {
    const misnamed = new StepFunctionsEngine(client, {
      provision: "laas-dev-provision",
      release: "laas-dev-release",
    });
    await expect(misnamed.history("booking-41-provision-1")).rejects.toMatchObject({
      name: "InvalidArn",
    });
  });

  it("refuses an event without a field the API reference requires", async () => {
    const [started, entering] = wire([executionStarted, entered("StartImaging")]);
    const { timestamp: _, ...untimed } = started as WireHistoryEvent;
    serveEvents("booking-52-provision-1", [untimed as WireHistoryEvent]);
    serveEvents("booking-53-provision-1", [
      started as WireHistoryEvent,
      { ...(entering as WireHistoryEvent), stateEnteredEventDetails: {} },
    ]);

    await expect(engine.history("booking-52-provision-1")).rejects.toThrow(
      "execution history event 1 (ExecutionStarted) has no timestamp",
    );
    await expect(engine.history("booking-53-provision-1")).rejects.toThrow(
      "execution history event 2 (TaskStateEntered) has no state name",
    );
    expect(() => executionEventsOf([{ id: 1, timestamp: new Date(), type: undefined }])).toThrow(
      "execution history event 1 (no type) has no type",
    );
    expect(() =>
      executionEventsOf([
        {
          id: 7,
          timestamp: new Date(),
          type: "TaskStateExited",
          stateExitedEventDetails: { name: undefined },
        },
      ]),
    ).toThrow("execution history event 7 (TaskStateExited) has no state name");
  });

  it("leaves out an attempt's events that come before any state", () => {
    const history: HistoryEvent[] = [
      { id: 1, timestamp: new Date(T0 * 1000), type: "ExecutionStarted" },
      {
        id: 2,
        timestamp: new Date(T0 * 1000),
        type: "LambdaFunctionFailed",
        lambdaFunctionFailedEventDetails: { error: "E" },
      },
    ];
    expect(executionEventsOf(history)).toEqual([event(0, "ExecutionStarted", null)]);
  });
});

describe("the simulated GetExecutionHistory is as strict as Step Functions", () => {
  const name = "booking-60-provision-1";
  const arn = executionArn(name);
  const otherArn = executionArn("booking-61-provision-1");

  beforeAll(() => {
    serve("booking-61-provision-1", [executionStarted]);
    serve(name, [
      executionStarted,
      ...Array.from({ length: 60 }, () => lambdaTask("NoteStarted", "postStatus")).flat(),
    ]);
  });

  it("sends inputs and outputs unless asked not to, and 100 events a page by default", async () => {
    const page = await client.send(new GetExecutionHistoryCommand({ executionArn: arn }));
    expect(page.events).toHaveLength(100);
    expect(page.nextToken).toEqual(expect.any(String));
    expect(page.events?.[0]?.executionStartedEventDetails?.input).toBe(DATA);
    expect(sim.exchanges.at(-1)?.answer).toContain(SECRET);
  });

  it("refuses a token it never gave, or one given for other arguments", async () => {
    await expect(
      client.send(
        new GetExecutionHistoryCommand({ executionArn: arn, nextToken: "bm90LWEtdG9rZW4=" }),
      ),
    ).rejects.toBeInstanceOf(InvalidToken);
    expect(sim.exchanges.at(-1)?.answer).toMatch(
      /^\{"__type":"com\.amazonaws\.sfn#InvalidToken","message":/,
    );

    const asked = { executionArn: arn, includeExecutionData: false, maxResults: 10 };
    const first = await client.send(new GetExecutionHistoryCommand(asked));
    const { nextToken } = first;
    for (const changed of [
      { executionArn: otherArn },
      { maxResults: 20 },
      { includeExecutionData: true },
      { reverseOrder: true },
    ]) {
      await expect(
        client.send(new GetExecutionHistoryCommand({ ...asked, ...changed, nextToken })),
      ).rejects.toBeInstanceOf(InvalidToken);
    }
    const second = await client.send(new GetExecutionHistoryCommand({ ...asked, nextToken }));
    expect(second.events?.map((e) => e.id)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  });

  it("serves the newest first when asked to", async () => {
    const page = await client.send(
      new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 3, reverseOrder: true }),
    );
    expect(page.events?.map((e) => e.id)).toEqual([301, 300, 299]);
  });

  it("refuses a page of more than 1000, and an execution it does not know", async () => {
    await expect(
      client.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 1001 })),
    ).rejects.toMatchObject({ name: "ValidationException" });
    await expect(
      client.send(
        new GetExecutionHistoryCommand({ executionArn: executionArn("booking-0-provision-9") }),
      ),
    ).rejects.toBeInstanceOf(ExecutionDoesNotExist);
  });

  it("refuses what is not a signed awsJson1_0 GetExecutionHistory request", async () => {
    const signature =
      "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20251009/us-east-1/states/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0f";
    const good = {
      method: "POST",
      headers: {
        authorization: signature,
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "AWSStepFunctions.GetExecutionHistory",
      },
      body: JSON.stringify({ executionArn: arn }),
    };
    const refusals: [
      change: Partial<typeof good> & { path?: string },
      status: number,
      type: string,
    ][] = [
      [{ method: "GET", body: undefined }, 404, "UnknownOperationException"],
      [{ path: "/history" }, 404, "UnknownOperationException"],
      [
        { headers: { ...good.headers, authorization: "" } },
        403,
        "MissingAuthenticationTokenException",
      ],
      [
        { headers: { ...good.headers, authorization: signature.replace("/states/", "/lambda/") } },
        403,
        "MissingAuthenticationTokenException",
      ],
      [
        { headers: { ...good.headers, "content-type": "application/json" } },
        400,
        "SerializationException",
      ],
      [
        { headers: { ...good.headers, "x-amz-target": "AWSStepFunctions.DescribeExecution" } },
        400,
        "UnknownOperationException",
      ],
      [{ body: "{executionArn" }, 400, "SerializationException"],
      [{ body: "{}" }, 400, "ValidationException"],
      [
        { body: JSON.stringify({ executionArn: arn, includeExecutionData: "no" }) },
        400,
        "SerializationException",
      ],
      [
        { body: JSON.stringify({ executionArn: arn, reverseOrder: 1 }) },
        400,
        "SerializationException",
      ],
      [
        { body: JSON.stringify({ executionArn: arn, maxResults: 2.5 }) },
        400,
        "SerializationException",
      ],
      [
        { body: JSON.stringify({ executionArn: arn, maxResults: -1 }) },
        400,
        "SerializationException",
      ],
    ];
    const ok = await fetch(sim.endpoint, good);
    expect(ok.status).toBe(200);
    for (const [{ path = "/", ...change }, status, type] of refusals) {
      const answer = await fetch(new URL(path, sim.endpoint), { ...good, ...change });
      expect([change, answer.status]).toEqual([change, status]);
      const text = await answer.text();
      expect(text).not.toContain(SECRET);
      expect(JSON.parse(text)).toMatchObject({ __type: `com.amazonaws.sfn#${type}` });
    }
  });
});
