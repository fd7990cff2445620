/**
 * The embedded default's scheduler: what EventBridge's schedule is in the cloud. Polls every
 * 1/`polling` seconds until stopped; stopping lets running workflows finish for a while, then
 * hands the rest over (aborts them; the next listener's poll restarts them under their names).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../errors";
import { type PollReport, poll } from "../lifecycle/poll";
import { sweepVpnUsers } from "../lifecycle/sweep";
import type { EmbeddedRuntime } from "./embedded";

export interface ListenerOptions {
  /** Milliseconds between polls; defaults to 1000 / config.polling. */
  intervalMs?: number;
  /** How long stop() lets running workflows finish before handing them over. */
  drainMs: number;
  onPoll?: (report: PollReport) => void;
  /** Milliseconds between directory sweeps; defaults to handover.sweep_interval. */
  sweepIntervalMs?: number;
}

export class Listener {
  readonly #embedded: EmbeddedRuntime;
  readonly #options: ListenerOptions;
  readonly #stopping = new AbortController();
  #finished: Promise<{ finished: string[]; handedOver: string[] }> | null = null;
  #lastSweep = Number.NEGATIVE_INFINITY;

  constructor(embedded: EmbeddedRuntime, options: ListenerOptions) {
    this.#embedded = embedded;
    this.#options = options;
  }

  get intervalMs(): number {
    return this.#options.intervalMs ?? Math.round(1000 / this.#embedded.runtime.config.polling);
  }

  /** Polls until stop(); resolves with what was drained and what was handed over. */
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
      this.#options.onPoll?.(report);
      return report;
    } catch (error) {
      // A dashboard outage or a refused token must not stop the listener: log and poll again.
      runtime.logger.error({ err: errorMessage(error) }, "poll failed");
      return null;
    }
  }

  /**
   * The sweep, when one is due (what the scheduled `sweep` function is in the cloud). Its
   * failures are logged and the next one tries again.
   */
  async sweepIfDue(): Promise<void> {
    const { runtime } = this.#embedded;
    const handover = runtime.config.handover;
    if (!handover?.vpn) return;
    const interval = this.#options.sweepIntervalMs ?? handover.sweepSeconds * 1000;
    if (Date.now() - this.#lastSweep < interval) return;
    this.#lastSweep = Date.now();
    try {
      await sweepVpnUsers(runtime);
    } catch (error) {
      runtime.logger.error({ err: errorMessage(error) }, "directory sweep failed");
    }
  }

  async #loop() {
    const { runtime, engine } = this.#embedded;
    const signal = this.#stopping.signal;
    runtime.logger.info({ intervalMs: this.intervalMs }, "listener started");
    while (!signal.aborted) {
      await this.pollOnce();
      await this.sweepIfDue();
      await sleep(this.intervalMs, undefined, { signal }).catch(() => undefined);
    }
    runtime.logger.info({ running: engine.running() }, "listener stopping: draining workflows");
    const outcome = await engine.drain(this.#options.drainMs);
    runtime.logger.info(outcome, "listener stopped");
    return outcome;
  }
}
