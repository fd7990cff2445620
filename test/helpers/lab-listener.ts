/**
 * The embedded default listening on a simulated lab, as `laas reset-db --host` then `laas listen`
 * would set it up: host table filled from the lab's FOG, the store and local engine opened as the
 * listener, every log line captured. Tests poll with `listener.pollOnce()`; the watcher runs in
 * the background every `watchIntervalMs`, as in `laas listen`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "vitest";
import { stepHandlers } from "../../functions/steps";
import {
  type EmbeddedOptions,
  type EmbeddedRuntime,
  openEmbeddedRuntime,
} from "../../lib/app/embedded";
import { Listener } from "../../lib/app/listener";
import { main } from "../../lib/cli/main";
import type { SimulatedLab } from "../../sim/lab";
import { capturingLogger } from "./logs";

export interface LabListener {
  embedded: EmbeddedRuntime;
  listener: Listener;
  /** Every JSON log line so far. */
  lines: string[];
  /** Stops the background watcher (as a killed listener would). */
  stopWatching(): Promise<void>;
  /** Lets running workflows finish (5 s at most), then closes the store. */
  close(): Promise<void>;
}

export type LabListenerOptions = Pick<
  EmbeddedOptions,
  "retryOverridesMs" | "heartbeatOverridesMs" | "timeoutOverridesMs"
> & {
  watchIntervalMs?: number;
  resetHosts?: boolean;
  /** The step handlers the engine binds (default: functions/steps.ts's). */
  handlers?: EmbeddedOptions["handlers"];
};

/** Watcher cycles every `intervalMs` until the signal aborts. */
export function watchInBackground(
  listener: Listener,
  intervalMs: number,
): { stop(): Promise<void> } {
  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await listener.watchOnce();
      await sleep(intervalMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  })();
  return {
    stop: async () => {
      stopping.abort();
      await loop;
    },
  };
}

export async function listenOnLab(
  lab: SimulatedLab,
  options: LabListenerOptions = {},
): Promise<LabListener> {
  const quiet = () => undefined;
  if (options.resetHosts !== false) {
    const code = await main(["node", "laas", "reset-db", "--host", "--config", lab.configPath], {
      handlers: stepHandlers,
      out: quiet,
      err: quiet,
    });
    expect(code).toBe(0);
  }
  const { logger, lines } = capturingLogger();
  const {
    watchIntervalMs = 200,
    resetHosts: _,
    handlers = stepHandlers,
    ...engineOptions
  } = options;
  const embedded = await openEmbeddedRuntime(lab.configPath, {
    handlers,
    listen: true,
    logger,
    ...engineOptions,
  });
  const listener = new Listener(embedded, { drainMs: 5_000, watchIntervalMs });
  const watcher = watchInBackground(listener, watchIntervalMs);
  return {
    embedded,
    listener,
    lines,
    stopWatching: () => watcher.stop(),
    close: async () => {
      await watcher.stop();
      await embedded.engine.drain(5_000);
      await embedded.close();
    },
  };
}
