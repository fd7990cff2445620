/**
 * Dead time: from an event in the lab (imaging done, the imaged host up, the installer done) to
 * the workflow's next step, p50 and p95, on the simulated lab with every real part of LaaS — the
 * FOG client, the relay, the store, the engines. Both designs look once a second (the baseline's
 * `fog.poll_interval: 1`, the watcher's `watch_interval`), against the same kind of lab:
 *
 * - baseline: the polling workflows (bench/baseline/) on aws-local-stepfunctions, each execution
 *   looking for itself, the host's boot looked for with a pause doubling from 2 s;
 * - callbacks: today's workflows on the local engine, the listener's watcher answering tokens.
 *
 * Events come from the simulators' hooks (FOG completing a deploy, the host's sshd listening, the
 * installer writing its status); steps from the step handlers as they are called.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StateMachine, type StateMachineDefinition } from "aws-local-stepfunctions";
import { stepHandlers } from "../functions/steps";
import type { StepHandler } from "../lib/adapters/local/local-engine";
import { buildRuntime } from "../lib/app/build";
import { openEmbeddedRuntime } from "../lib/app/embedded";
import { openEmbeddedStore } from "../lib/app/embedded-store";
import { Listener } from "../lib/app/listener";
import { installRuntime, type Runtime } from "../lib/app/runtime";
import { main } from "../lib/cli/main";
import { loadPharosConfig } from "../lib/config/load";
import type { Phase } from "../lib/domain/booking";
import { poll } from "../lib/lifecycle/poll";
import { silentLogger } from "../lib/log";
import "../lib/polyfills";
import type { ExecutionStatus, PhaseInput, WorkflowEngine } from "../lib/ports/engine";
import { bindTasks, loadDefinition } from "../lib/workflow/definitions";
import { bookingAt } from "../sim/dashboard-sim";
import { type SimulatedLab, startSimulatedLab } from "../sim/lab";
import { baselineSteps } from "./baseline/polling-steps";

export type DeadTimeEvent = "imaged" | "host-up" | "installer-done";

export interface DeadTimeRow {
  design: "callbacks" | "baseline";
  event: DeadTimeEvent;
  samples: number;
  p50Ms: number;
  p95Ms: number;
  intervalMs: number;
}

const INTERVAL_MS = 1_000;

interface Seen {
  host: string;
  what: string;
  at: number;
}

/** The step that follows each event: its function (and, for awaitEvent, the wait it registers). */
const NEXT_STEP: Record<DeadTimeEvent, string[]> = {
  imaged: ["checkHost", "awaitEvent:host-up", "markReleased"],
  "host-up": ["buildPod"],
  "installer-done": ["createVpnUser"],
};

/**
 * Each imaging is followed by its next step (the first after it, for that host). A host also
 * comes up after its clean imaging at release, which no pod build follows; so host-up and
 * installer-done are matched from the step back: each pod build to the host's latest boot before
 * it, each VPN-user step to the latest installer end.
 */
function matchEvents(event: DeadTimeEvent, events: Seen[], steps: Seen[]): number[] {
  const ofEvent = events.filter((e) => e.what === event);
  const next = steps.filter((s) => NEXT_STEP[event].includes(s.what));
  if (event === "imaged") {
    return ofEvent.flatMap((seen) => {
      const step = next.find((s) => s.host === seen.host && s.at >= seen.at);
      return step ? [step.at - seen.at] : [];
    });
  }
  return next.flatMap((step) => {
    const before = ofEvent.filter((e) => e.host === step.host && e.at <= step.at).at(-1);
    return before ? [step.at - before.at] : [];
  });
}

function stats(samples: number[]): Pick<DeadTimeRow, "samples" | "p50Ms" | "p95Ms"> {
  return {
    samples: samples.length,
    p50Ms: percentile(samples, 50),
    p95Ms: percentile(samples, 95),
  };
}

/** The polling workflows, run in this process the way the old local engine ran them. */
class BaselineEngine implements WorkflowEngine {
  readonly #machines = new Map<
    Phase,
    { machine: StateMachine; overrides: Record<string, StepHandler> }
  >();
  readonly #runs = new Map<string, { status: ExecutionStatus; abort(): void }>();

  constructor(handlers: Record<string, StepHandler>) {
    for (const phase of ["provision", "release"] as const) {
      const { definition, bindings } = bindTasks(
        loadDefinition(join(import.meta.dirname, "baseline", `${phase}.asl.yaml`)),
      );
      const overrides: Record<string, StepHandler> = {};
      for (const { stateName, functionName } of bindings) {
        const handler = handlers[functionName];
        if (!handler) throw new Error(`baseline: no step ${functionName}`);
        overrides[stateName] = handler;
      }
      const machine = new StateMachine(definition as unknown as StateMachineDefinition);
      this.#machines.set(phase, { machine, overrides });
    }
  }

  async start(phase: Phase, name: string, input: PhaseInput) {
    if (this.#runs.has(name)) return { started: false };
    const entry = this.#machines.get(phase)!;
    const run = entry.machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: entry.overrides as never },
    });
    const record = { status: "RUNNING" as ExecutionStatus, abort: run.abort };
    this.#runs.set(name, record);
    run.result.then(
      () => {
        record.status = "SUCCEEDED";
      },
      () => {
        record.status = "FAILED";
      },
    );
    return { started: true };
  }
  async stop(name: string) {
    this.#runs.get(name)?.abort();
  }
  async status(name: string) {
    return this.#runs.get(name)?.status ?? null;
  }
  async sendTaskSuccess() {
    return "gone" as const;
  }
  async sendTaskFailure() {
    return "gone" as const;
  }
  async sendTaskHeartbeat() {
    return "gone" as const;
  }
  /** The baseline keeps no history: the bench measures steps, never reads one. */
  async history() {
    return null;
  }
  stopAll() {
    for (const run of this.#runs.values()) run.abort();
  }
}

function timed(handlers: Record<string, StepHandler>, steps: Seen[]): Record<string, StepHandler> {
  const wrapped: Record<string, StepHandler> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    wrapped[name] = (async (event: Record<string, unknown>) => {
      const what = name === "awaitEvent" ? `awaitEvent:${String(event.event)}` : name;
      steps.push({ host: String(event.hostName), what, at: Date.now() });
      return (handler as (e: unknown) => Promise<unknown>)(event);
    }) as StepHandler;
  }
  return wrapped;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** Books every host of the lab, waits for them ready, ends them, waits for them released. */
async function rounds(lab: SimulatedLab, rt: () => Runtime, count: number): Promise<void> {
  for (let round = 0; round < count; round++) {
    const ids = lab.inventory.map((host, i) => {
      const id = 1000 + round * 10 + i;
      lab.dashboard.addBooking(
        bookingAt({
          id,
          resource_id: Number(host.resourceId),
          start: new Date(Date.now() - 1_000),
          end: new Date(Date.now() + 3_600_000),
          installer_name: "Fuel",
          purpose: "dead-time benchmark",
        }),
      );
      return String(id);
    });
    const all = async (state: string) => {
      for (let t = 0; t < 1_200; t++) {
        const bookings = await Promise.all(ids.map((id) => rt().store.getBooking(id)));
        const failed = bookings.find((b) => b?.state === "failed");
        if (failed) throw new Error(`booking ${failed.id} failed: ${failed.failure}`);
        if (bookings.every((b) => b?.state === state)) return;
        await sleep(100);
      }
      throw new Error(`bookings ${ids.join(", ")} never all ${state}`);
    };
    await all("ready");
    for (const id of ids) lab.dashboard.removeBooking(id);
    await all("released");
  }
}

async function measure(design: DeadTimeRow["design"], roundCount: number): Promise<DeadTimeRow[]> {
  const workDir = await mkdtemp(join(tmpdir(), `laas-bench-${design}-`));
  const lab = await startSimulatedLab({
    workDir,
    timeScale: 200,
    pollInterval: INTERVAL_MS / 1000,
    polling: 1,
    installerMs: 2_000,
    imagedBootMs: 800,
    // Events at any moment, not in step with either design's looks.
    jitterMs: 3 * INTERVAL_MS,
  });
  const events: Seen[] = [];
  const steps: Seen[] = [];
  lab.onDeployed((host) => events.push({ host, what: "imaged", at: Date.now() }));
  lab.onImagedUp((host) => events.push({ host, what: "host-up", at: Date.now() }));
  lab.onInstallerDone((host) => events.push({ host, what: "installer-done", at: Date.now() }));
  const quiet = () => undefined;
  await main(["node", "laas", "reset-db", "--host", "--config", lab.configPath], {
    handlers: stepHandlers,
    out: quiet,
    err: quiet,
  });
  try {
    if (design === "callbacks") {
      const embedded = await openEmbeddedRuntime(lab.configPath, {
        handlers: timed(stepHandlers, steps),
        listen: true,
        logger: silentLogger,
      });
      const listener = new Listener(embedded, {
        drainMs: 1_000,
        intervalMs: 1_000,
        watchIntervalMs: INTERVAL_MS,
      });
      const running = listener.run();
      try {
        await rounds(lab, () => embedded.runtime, roundCount);
      } finally {
        listener.stop();
        await running;
        await embedded.close();
      }
    } else {
      const config = await loadPharosConfig(lab.configPath);
      const store = await openEmbeddedStore(config.database, { listen: true });
      const engine = new BaselineEngine(timed(baselineSteps(stepHandlers), steps));
      const rt = buildRuntime({ config, store: store.store, engine, logger: silentLogger });
      installRuntime(rt);
      let polling = true;
      const poller = (async () => {
        while (polling) {
          await poll(rt).catch(() => undefined);
          await sleep(1_000);
        }
      })();
      try {
        await rounds(lab, () => rt, roundCount);
      } finally {
        polling = false;
        await poller;
        engine.stopAll();
        await store.close();
      }
    }
  } finally {
    await lab.close();
    await rm(workDir, { recursive: true, force: true });
  }
  const rows: DeadTimeRow[] = [];
  for (const event of Object.keys(NEXT_STEP) as DeadTimeEvent[]) {
    rows.push({
      design,
      event,
      ...stats(matchEvents(event, events, steps)),
      intervalMs: INTERVAL_MS,
    });
  }
  return rows;
}

export async function deadTime(roundCount: number): Promise<DeadTimeRow[]> {
  return [...(await measure("baseline", roundCount)), ...(await measure("callbacks", roundCount))];
}
