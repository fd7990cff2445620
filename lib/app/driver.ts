/**
 * What moves workflows on the embedded default, where nothing like Step Functions runs by
 * itself: a cycle is the local engine's look at its journal (stop requests, and for the listener
 * the executions handed to it or left by a process that is gone), then the lab's watcher, which
 * answers the task tokens of the waits whose event came.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../errors";
import { type WatchReport, watch } from "../lifecycle/watch";
import type { EmbeddedRuntime } from "./embedded";

export interface DriverOptions {
  /** Milliseconds between two cycles; defaults to the config's watch interval. */
  intervalMs?: number;
  /** Take over executions handed to this process or orphaned (the listener does). */
  adopt: boolean;
}

export class Driver {
  readonly #embedded: EmbeddedRuntime;
  readonly #adopt: boolean;
  readonly intervalMs: number;

  constructor(embedded: EmbeddedRuntime, options: DriverOptions) {
    this.#embedded = embedded;
    this.#adopt = options.adopt;
    this.intervalMs = options.intervalMs ?? embedded.runtime.config.watchSeconds * 1000;
  }

  /** One cycle; its failures are logged, and the next cycle tries again. */
  async cycle(options: { adopt?: boolean } = {}): Promise<WatchReport | null> {
    const { runtime, engine } = this.#embedded;
    try {
      await engine.tick({ adopt: options.adopt ?? this.#adopt });
      return await watch(runtime);
    } catch (error) {
      runtime.logger.error({ err: errorMessage(error) }, "watch cycle failed");
      return null;
    }
  }

  /** Cycles until `done` says so (looked at after each cycle) or `signal` aborts. */
  async until(done: () => boolean | Promise<boolean>, signal?: AbortSignal): Promise<void> {
    for (;;) {
      await this.cycle();
      if ((await done()) || signal?.aborted) return;
      await sleep(this.intervalMs, undefined, signal ? { signal } : {}).catch(() => undefined);
    }
  }

  /** Cycles until no execution runs in this process any more. */
  untilIdle(signal?: AbortSignal): Promise<void> {
    return this.until(() => this.#embedded.engine.running().length === 0, signal);
  }
}
