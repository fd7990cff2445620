/**
 * The embedded default listening on a simulated lab, as `laas reset-db --host` then `laas listen`
 * would set it up: host table filled from the lab's FOG, the store and local engine opened as the
 * listener, every log line captured. Tests poll with `listener.pollOnce()`.
 */
import { expect } from "vitest";
import { stepHandlers } from "../../functions/steps";
import { type EmbeddedRuntime, openEmbeddedRuntime } from "../../lib/app/embedded";
import { Listener } from "../../lib/app/listener";
import { main } from "../../lib/cli/main";
import type { SimulatedLab } from "../sim/lab";
import { capturingLogger } from "./logs";

export interface LabListener {
  embedded: EmbeddedRuntime;
  listener: Listener;
  /** Every JSON log line so far. */
  lines: string[];
  /** Lets running workflows finish (5 s at most), then closes the store. */
  close(): Promise<void>;
}

export async function listenOnLab(
  lab: SimulatedLab,
  options: { retryOverridesMs?: Record<string, number> } = {},
): Promise<LabListener> {
  const quiet = () => undefined;
  const code = await main(["node", "laas", "reset-db", "--host", "--config", lab.configPath], {
    handlers: stepHandlers,
    out: quiet,
    err: quiet,
  });
  expect(code).toBe(0);
  const { logger, lines } = capturingLogger();
  const embedded = await openEmbeddedRuntime(lab.configPath, {
    handlers: stepHandlers,
    listen: true,
    logger,
    ...(options.retryOverridesMs ? { retryOverridesMs: options.retryOverridesMs } : {}),
  });
  return {
    embedded,
    listener: new Listener(embedded, { drainMs: 5_000 }),
    lines,
    close: async () => {
      await embedded.engine.drain(5_000);
      await embedded.close();
    },
  };
}
