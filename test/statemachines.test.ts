/**
 * The rules the workflow files in statemachines/ must keep, on both engines: every Task bounded
 * in time, retried and caught; every failure recorded on the booking before the execution fails;
 * nothing that loops with time — the waits for the world are callback tasks, under the ceilings
 * the config is held to; valid ASL; every called function deployed and bound.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { StateMachine, type StateMachineDefinition } from "aws-local-stepfunctions";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import * as steps from "../functions/steps";
import { localStepHandlers } from "../lib/app/step-handlers";
import type { Phase } from "../lib/domain/booking";
import { WAIT_EVENTS } from "../lib/domain/run";
import { workflowSteps } from "../lib/lifecycle/steps";
import {
  bindTasks,
  CALLBACK_RESOURCE,
  definitionPath,
  isCallbackTask,
  type JsonObject,
  loadDefinition,
  taskFunction,
} from "../lib/workflow/definitions";
import {
  WAIT_CEILING_SECONDS,
  WAIT_HEARTBEAT_SECONDS,
  WAIT_STATES,
} from "../lib/workflow/wait-ceilings";
import { repoRoot } from "../sim/lab";
import {
  catchers,
  isObject,
  retriers,
  type ScopedState,
  scopedStates,
  transitionCycle,
  unrecordedFailurePaths,
} from "./helpers/asl-graph";

const PHASES: Phase[] = ["provision", "release"];
const RECORDER = "recordFailure";
/** Status notes: best effort, they may stand between recording a failure and failing. */
const NOTIFIERS = ["postStatus"];
const EVERYTHING = [["States.ALL"]];

/** Catchers that deliberately continue instead of recording a failure, by phase/state. */
const RECOVERIES: Record<string, string[][]> = {
  // A host that cannot be reached to remove the pod is reimaged, which clears the pod as well.
  "release/RemovePod": [["HostUnreachable", "TransientError"]],
  // The sweep removes a VPN user that release could not; the host is reimaged all the same.
  "release/RevokeAccess": EVERYTHING,
  // A hand-over that cannot be delivered never undoes a ready pod.
  "provision/HandOver": EVERYTHING,
  "provision/RecordUndelivered": EVERYTHING,
  // A status note lost never stops a booking.
  "provision/NoteStarted": EVERYTHING,
  "provision/NoteReady": EVERYTHING,
  "provision/NoteFailed": EVERYTHING,
  "release/NoteReleased": EVERYTHING,
  "release/NoteReleaseFailed": EVERYTHING,
};
/** The callback waits of each phase, by the event each waits for. */
const WAITS: Record<Phase, Record<string, string>> = {
  provision: { AwaitImaging: "imaged", AwaitHost: "host-up", AwaitInstaller: "installer-done" },
  release: { AwaitImaging: "imaged" },
};

function load(phase: Phase): JsonObject {
  return loadDefinition(definitionPath(phase, repoRoot));
}

function ofType(definition: JsonObject, type: string): ScopedState[] {
  return scopedStates(definition).filter((s) => s.state.Type === type);
}

function payloadOf(state: JsonObject): JsonObject {
  const parameters = isObject(state.Parameters) ? state.Parameters : {};
  return isObject(parameters.Payload) ? parameters.Payload : {};
}

function label(s: ScopedState): string {
  return [...s.enclosing, s.name].join("/");
}

function machine(definition: JsonObject): StateMachine {
  return new StateMachine(definition as unknown as StateMachineDefinition, {
    validationOptions: { checkArn: true, checkPaths: true },
  });
}

describe.each(PHASES)("statemachines/%s.asl.yaml", (phase) => {
  const definition = load(phase);

  it("has Task states, all at the top level (a resumed execution starts at one of them)", () => {
    const tasks = ofType(definition, "Task");
    expect(tasks.length).toBeGreaterThanOrEqual(4);
    expect(tasks.filter((t) => t.enclosing.length > 0)).toEqual([]);
    expect(ofType(definition, "Parallel")).toEqual([]);
    expect(ofType(definition, "Map")).toEqual([]);
  });

  it("bounds, retries and catches every Task, catching everything last", () => {
    for (const task of ofType(definition, "Task")) {
      const where = `${phase}: ${label(task)}`;
      expect(task.state.TimeoutSeconds, where).toEqual(expect.any(Number));
      expect(task.state.TimeoutSeconds as number, where).toBeGreaterThan(0);
      expect(retriers(task.state).length, where).toBeGreaterThan(0);
      const caught = catchers(task.state);
      expect(caught.length, where).toBeGreaterThan(0);
      expect(caught.at(-1)?.ErrorEquals, where).toEqual(["States.ALL"]);
    }
  });

  it("records every caught failure with recordFailure, then fails", () => {
    // The one deliberate recovery: a release whose host cannot be reached to remove the pod goes
    // on to reimage it, which clears the pod as well.
    const catching = scopedStates(definition).filter((s) => catchers(s.state).length > 0);
    expect(catching.length).toBeGreaterThan(0);
    for (const from of catching) {
      // Recording itself failing has nothing left to record with: it only has to fail.
      if (taskFunction(from.state) === RECORDER) continue;
      const recoveries = RECOVERIES[`${phase}/${from.name}`] ?? [];
      expect(
        unrecordedFailurePaths(from, RECORDER, recoveries, NOTIFIERS),
        `${phase}: ${label(from)}`,
      ).toEqual([]);
    }
  });

  it("fails straight away when recording the failure fails", () => {
    const recorders = ofType(definition, "Task").filter((t) => taskFunction(t.state) === RECORDER);
    expect(recorders.length).toBeGreaterThan(0);
    for (const recorder of recorders) {
      for (const catcher of catchers(recorder.state)) {
        const target = recorder.scope.states[String(catcher.Next)];
        expect(target?.Type, `${phase}: ${label(recorder)} → ${String(catcher.Next)}`).toBe("Fail");
      }
    }
  });

  it("holds nothing that loops with time: no Wait state, no circle of transitions", () => {
    expect(ofType(definition, "Wait")).toEqual([]);
    expect(transitionCycle(definition.States as Record<string, JsonObject>)).toBeNull();
  });

  it("waits for the world only in callback tasks, each under its ceiling, heartbeats bounded", () => {
    const callbacks = ofType(definition, "Task").filter((t) => isCallbackTask(t.state));
    expect(Object.fromEntries(callbacks.map((t) => [t.name, payloadOf(t.state).event]))).toEqual(
      WAITS[phase],
    );
    for (const wait of callbacks) {
      const where = `${phase}: ${wait.name}`;
      const event = String(payloadOf(wait.state).event) as (typeof WAIT_EVENTS)[number];
      expect(WAIT_EVENTS, where).toContain(event);
      expect(wait.name, where).toBe(WAIT_STATES[event]);
      expect(taskFunction(wait.state), where).toBe("awaitEvent");
      expect(payloadOf(wait.state)["taskToken.$"], where).toBe("$$.Task.Token");
      expect(wait.state.TimeoutSeconds, where).toBe(WAIT_CEILING_SECONDS[event]);
      // The config holds the watcher's interval to a third of it (lib/workflow/wait-ceilings.ts).
      expect(wait.state.HeartbeatSeconds, where).toBe(WAIT_HEARTBEAT_SECONDS);
      expect(wait.state.HeartbeatSeconds as number, where).toBeLessThan(
        wait.state.TimeoutSeconds as number,
      );
      const onHeartbeat = retriers(wait.state).find((r) =>
        (r.ErrorEquals as string[]).includes("States.HeartbeatTimeout"),
      );
      expect(onHeartbeat?.MaxAttempts, where).toEqual(expect.any(Number));
    }
    // Only the callback tasks use the callback resource, and only through awaitEvent.
    const names = callbacks.map((t) => t.name);
    for (const task of ofType(definition, "Task")) {
      if (task.state.Resource === CALLBACK_RESOURCE) expect(names).toContain(task.name);
    }
  });

  it("gives every Choice a Default", () => {
    for (const choice of ofType(definition, "Choice")) {
      const target = choice.state.Default;
      expect(target, `${phase}: ${label(choice)}`).toEqual(expect.any(String));
      expect(choice.scope.states, `${phase}: ${label(choice)}`).toHaveProperty(String(target));
    }
  });

  it("passes aws-local-stepfunctions validation once its Tasks are bound", () => {
    const bound = bindTasks(definition).definition;
    expect(() => machine(bound)).not.toThrow();
    // The validation is really on, ARNs and transitions included.
    const badArn = structuredClone(bound);
    const firstTask = scopedStates(badArn).find((s) => s.state.Type === "Task");
    expect(firstTask).toBeDefined();
    if (firstTask) firstTask.state.Resource = "not-an-arn";
    expect(() => machine(badArn)).toThrow(/Resource/);
    const dangling = structuredClone(bound);
    dangling.StartAt = "NoSuchState";
    expect(() => machine(dangling)).toThrow(/NoSuchState/);
  });
});

describe("access on failure", () => {
  const provision = load("provision");
  const topLevel = scopedStates(provision).filter((s) => s.enclosing.length === 0);

  it("takes back the access made before any provision failure is recorded", () => {
    const toRecorder = topLevel.filter(
      (s) =>
        s.state.Next === "RecordFailure" ||
        catchers(s.state).some((c) => c.Next === "RecordFailure"),
    );
    expect(toRecorder.map((s) => s.name)).toEqual(["UndoAccess"]);
    const undo = topLevel.find((s) => s.name === "UndoAccess");
    expect(undo && taskFunction(undo.state)).toBe("undoAccess");
    // Every other catcher that does not recover leads to UndoAccess.
    for (const from of topLevel) {
      if (
        RECOVERIES[`provision/${from.name}`] ||
        ["UndoAccess", "RecordFailure"].includes(from.name)
      )
        continue;
      for (const catcher of catchers(from.state)) {
        expect(catcher.Next, `provision: ${from.name}`).toBe("UndoAccess");
      }
    }
  });

  it("makes access after the pod and the installer, and hands over after ready", () => {
    const order: string[] = [];
    for (let name: unknown = provision.StartAt; typeof name === "string"; ) {
      order.push(name);
      const state = topLevel.find((s) => s.name === name)?.state;
      name = state?.Next;
    }
    expect(order).toEqual([
      "NoteStarted",
      "StartImaging",
      "AwaitImaging",
      "AwaitHost",
      "BuildPod",
      "StartInstaller",
      "AwaitInstaller",
      "CreateVpnUser",
      "SetHostAccess",
      "MarkReady",
      "NoteReady",
      "HandOver",
      "Provisioned",
    ]);
  });
});

describe("functions the state machines call", () => {
  const serverless: unknown = parse(readFileSync(join(repoRoot, "serverless.yml"), "utf8"));
  const functions =
    isObject(serverless) && isObject(serverless.functions) ? serverless.functions : {};
  const called = [
    ...new Set(
      PHASES.flatMap((phase) => bindTasks(load(phase)).bindings.map((b) => b.functionName)),
    ),
  ].sort();

  it("include the imaging steps and the outcomes", () => {
    expect(called).toEqual(
      expect.arrayContaining([
        "startImaging",
        "awaitEvent",
        "markReady",
        "markReleased",
        "recordFailure",
      ]),
    );
  });

  const handlers: Record<string, unknown> = steps.stepHandlers;

  it.each(called)("%s is a function in serverless.yml and a bound step handler", async (name) => {
    const declared = functions[name];
    expect(isObject(declared), `serverless.yml functions.${name}`).toBe(true);
    expect(handlers[name], `stepHandlers.${name}`).toEqual(expect.any(Function));
    // The Lambda function runs the very handler the local engine binds.
    const handler = isObject(declared) ? String(declared.handler) : "";
    const at = handler.lastIndexOf(".");
    const file = handler.slice(0, at);
    expect(file).toBe(`functions/steps/${name}/index`);
    const exports: Record<string, unknown> = await import(join(repoRoot, `${file}.ts`));
    expect(exports[handler.slice(at + 1)], handler).toBe(handlers[name]);
  });

  it("are the steps the local engine runs, and no others", () => {
    expect(Object.keys(workflowSteps).sort()).toEqual(Object.keys(handlers).sort());
    expect(Object.keys(localStepHandlers()).sort()).toEqual([...new Set(called)].sort());
  });
});

describe("the failure-path walk", () => {
  const problemsAfter = (change: (definition: JsonObject) => void): string[] => {
    const definition = structuredClone(load("provision"));
    change(definition);
    return scopedStates(definition)
      .filter((s) => catchers(s.state).length > 0 && taskFunction(s.state) !== RECORDER)
      .flatMap((s) =>
        unrecordedFailurePaths(s, RECORDER, RECOVERIES[`provision/${s.name}`], NOTIFIERS),
      );
  };
  const state = (definition: JsonObject, name: string): JsonObject => {
    const found = scopedStates(definition).find((s) => s.name === name);
    if (!found) throw new Error(`no state ${name}`);
    return found.state;
  };

  it("finds nothing wrong with the shipped file", () => {
    expect(problemsAfter(() => undefined)).toEqual([]);
  });

  it("sees a catcher that skips recording", () => {
    expect(
      problemsAfter((d) => {
        const [catcher] = catchers(state(d, "MarkReady"));
        if (catcher) catcher.Next = "Provisioned";
      }),
    ).toEqual([expect.stringMatching(/MarkReady \(caught\) → Provisioned: ends without/)]);
  });

  it("sees a catcher that goes round in a circle", () => {
    expect(
      problemsAfter((d) => {
        state(d, "UndoAccess").Next = "UndoAccess";
      }),
    ).toContainEqual(expect.stringMatching(/UndoAccess → UndoAccess: goes round in a circle/));
  });

  it("sees a circle of transitions, and no circle where there is none", () => {
    const definition = structuredClone(load("provision"));
    expect(transitionCycle(definition.States as Record<string, JsonObject>)).toBeNull();
    state(definition, "BuildPod").Next = "AwaitHost";
    expect(transitionCycle(definition.States as Record<string, JsonObject>)).toEqual([
      "AwaitHost",
      "BuildPod",
      "AwaitHost",
    ]);
  });

  it("sees a recorded failure that ends in success", () => {
    const problems = problemsAfter((d) => {
      state(d, "RecordFailure").Next = "Provisioned";
    });
    expect(problems.length).toBeGreaterThan(0);
    for (const problem of problems) expect(problem).toMatch(/not followed by a Fail state/);
  });
});
