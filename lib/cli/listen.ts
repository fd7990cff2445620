import { join } from "node:path";
import type { StepHandler } from "../adapters/local/local-engine";
import { openEmbeddedRuntime } from "../app/embedded";
import { Listener } from "../app/listener";
import { loadPharosConfig } from "../config/load";
import { createLogger } from "../log";

export interface ListenOptions {
  config: string;
  drainSeconds: number;
  once: boolean;
}

export async function listenCommand(
  options: ListenOptions,
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
): Promise<number> {
  const config = await loadPharosConfig(options.config);
  const logger = createLogger({
    destination: join(config.loggingDir, "laas.log"),
    alsoStdout: true,
  });
  const embedded = await openEmbeddedRuntime(config, { handlers, listen: true, logger });
  const listener = new Listener(embedded, { drainMs: options.drainSeconds * 1000 });
  const stop = (signal: string) => {
    logger.info({ signal }, "stop requested");
    listener.stop();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    if (options.once) {
      await listener.pollOnce();
      // Let the workflows this poll started run to their end.
      await embedded.engine.drain(Number.POSITIVE_INFINITY);
      return 0;
    }
    const { finished, handedOver } = await listener.run();
    out(
      `listener stopped: ${finished.length} workflow(s) finished, ${handedOver.length} handed over` +
        (handedOver.length ? ` (${handedOver.join(", ")}; the next listener restarts them)` : ""),
    );
    return 0;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    await embedded.close();
  }
}
