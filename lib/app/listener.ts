/**
 * The embedded default's scheduler: what EventBridge's schedules are in the cloud. Polls every
 * 1/`polling` seconds and runs the lab's watcher every `watch_interval` seconds until stopped.
 * Stopping lets running workflows go on (watched) for a while, then hands the rest over: they stop
 * running here and keep their place in the journal, and the next listener resumes them there.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../errors";
import { type PollReport, poll } from "../lifecycle/poll";
import { sweep } from "../lifecycle/sweep";
import type { WatchReport } from "../lifecycle/watch";
import { Driver } from "./driver";
import type { EmbeddedRuntime } from "./embedded";

export interface ListenerOptions {
  /** Milliseconds between polls; defaults to 1000 / config.polling. */
  intervalMs?: number;
  /** Milliseconds between watcher cycles; defaults to config.watchSeconds. */
  watchIntervalMs?: number;
  /** How long stop() lets running workflows go on before handing them over. */
  drainMs: number;
  onPoll?: (report: PollReport) => void;
  /** Milliseconds between sweeps; defaults to handover.sweep_interval, or an hour without one. */
  sweepIntervalMs?: number;
}

/** The cloud's sweep rate without a handover section (scripts/serverless-vars.cjs). */
const DEFAULT_SWEEP_SECONDS = 3600;

export class Listener {
  readonly #embedded: EmbeddedRuntime;
  readonly #options: ListenerOptions;
  readonly #driver: Driver;
  readonly #stopping = new AbortController();
  #finished: Promise<{ finished: string[]; handedOver: string[] }> | null = null;
  #lastSweep = Number.NEGATIVE_INFINITY;
  #lastPollError: string | null = null;

  constructor(embedded: EmbeddedRuntime, options: ListenerOptions) {
    this.#embedded = embedded;
    this.#options = options;
    this.#driver = new Driver(embedded, {
      adopt: true,
      ...(options.watchIntervalMs !== undefined ? { intervalMs: options.watchIntervalMs } : {}),
    });
  }

  get intervalMs(): number {
    return this.#options.intervalMs ?? Math.round(1000 / this.#embedded.runtime.config.polling);
  }

  get watchIntervalMs(): number {
    return this.#driver.intervalMs;
  }

  /** Polls and watches until stop(); resolves with what was drained and what was handed over. */
  run(): Promise<{ finished: string[]; handedOver: string[] }> {
    this.#finished ??= this.#loop();
    return this.#finished;
  }

  stop(): void {
    this.#stopping.abort();
  }

  async pollOnce(): Promise<PollReport | null> {
    const { runtime } = this.#embedded;
    try {
      const report = await poll(runtime);
      this.#lastPollError = null;
      this.#options.onPoll?.(report);
      return report;
    } catch (error) {
      // A dashboard outage or a refused token must not stop the listener: log and poll again.
      this.#lastPollError = errorMessage(error);
      runtime.logger.error({ err: this.#lastPollError }, "poll failed");
      return null;
    }
  }

  /** Why the latest poll failed, or null when it did not (or none ran yet). */
  get lastPollError(): string | null {
    return this.#lastPollError;
  }

  /** One watcher cycle (the engine adopts what was handed over, then the watcher looks). */
  watchOnce(): Promise<WatchReport | null> {
    return this.#driver.cycle();
  }

  /** Watches until no workflow runs here any more (`listen --once`). */
  untilIdle(): Promise<void> {
    return this.#driver.untilIdle();
  }

  /**
   * The sweep, when one is due (what the scheduled `sweep` function is in the cloud): VPN entries
   * of bookings that are over, and bookings past their retention with their executions' journal
   * records (lifecycle/sweep.ts). Its failures are logged and the next one tries again.
   */
  async sweepIfDue(): Promise<void> {
    const { runtime, storeHandle } = this.#embedded;
    const seconds = runtime.config.handover?.sweepSeconds ?? DEFAULT_SWEEP_SECONDS;
    const interval = this.#options.sweepIntervalMs ?? seconds * 1000;
    if (Date.now() - this.#lastSweep < interval) return;
    this.#lastSweep = Date.now();
    try {
      // An execution's history goes with its journal record (both only the local engine has).
      const { journal } = storeHandle;
      const { engine } = this.#embedded;
      await sweep(runtime, {
        list: () => journal.list(),
        remove: async (name, ifVersion) => {
          await journal.remove(name, ifVersion);
          await engine.forgetHistory(name);
        },
      });
    } catch (error) {
      runtime.logger.error({ err: errorMessage(error) }, "sweep failed");
    }
  }

  async #loop() {
    const { runtime, engine } = this.#embedded;
    const signal = this.#stopping.signal;
    runtime.logger.info(
      { intervalMs: this.intervalMs, watchIntervalMs: this.watchIntervalMs },
      "listener started",
    );
    let nextPoll = 0;
    let nextWatch = 0;
    while (!signal.aborted) {
      const now = Date.now();
      if (now >= nextWatch) {
        // First thing at start too: executions a previous listener left are resumed at once.
        // Cycles start every interval, however long each takes: a look is never later than that.
        nextWatch = now + this.watchIntervalMs;
        await this.watchOnce();
      }
      if (Date.now() >= nextPoll) {
        nextPoll = Date.now() + this.intervalMs;
        await this.pollOnce();
      }
      await this.sweepIfDue();
      const pause = Math.max(0, Math.min(nextPoll, nextWatch) - Date.now());
      await sleep(pause, undefined, { signal }).catch(() => undefined);
    }
    runtime.logger.info({ running: engine.running() }, "listener stopping: draining workflows");
    // The watcher keeps answering while the workflows drain, so waits that end meanwhile go on.
    const draining = engine.drain(this.#options.drainMs);
    let drained = false;
    void draining.finally(() => {
      drained = true;
    });
    while (!drained) {
      // Nothing new is taken on while stopping.
      await this.#driver.cycle({ adopt: false });
      await Promise.race([draining, sleep(this.watchIntervalMs)]);
    }
    const outcome = await draining;
    runtime.logger.info(outcome, "listener stopped");
    return outcome;
  }
}
