import { join } from "node:path";
import type { StepHandler } from "../adapters/local/local-engine";
import { openEmbeddedRuntime } from "../app/embedded";
import { Listener } from "../app/listener";
import { loadPharosConfig } from "../config/load";
import type { PharosConfig } from "../config/types";
import { LaasError } from "../errors";
import { createLogger, LOG_FILE, type LogStream } from "../log";
import { openTerminal, terminalMode } from "./terminal";
import { serveStatusPage } from "./ui";

export interface ListenOptions {
  config: string;
  drainSeconds: number;
  once: boolean;
  /** The log's JSON lines on stdout (the listener's own lines on stderr). */
  json?: boolean;
  /** Serve the status page and /metrics from this process (pharos.yaml web:, or these). */
  ui?: { address?: string; port?: number };
}

/**
 * `laas listen`: the log file gets every event as JSON; the terminal shows one live line per
 * active booking, or one plain line per event when stdout is not a terminal, or the JSON lines
 * with --json (terminal.ts).
 */
export async function listenCommand(
  options: ListenOptions,
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
  err: (line: string) => void = out,
): Promise<number> {
  const config = await loadPharosConfig(options.config);
  const terminal = openTerminal(terminalMode(options.json === true), {
    out,
    err,
    plainLevel: "info",
    eventsMoveLines: true,
  });
  try {
    return await listenWith(config, options, handlers, terminal.say, terminal.streams);
  } finally {
    terminal.close();
  }
}

async function listenWith(
  config: PharosConfig,
  options: ListenOptions,
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
  streams: LogStream[],
): Promise<number> {
  const logger = createLogger({ destination: join(config.loggingDir, LOG_FILE), streams });
  // The handlers go in before the store opens: from then on listener.json names this process,
  // and a `laas stop` or Ctrl-C that comes before the poll loop runs must still stop it cleanly
  // (drain, remove the record) rather than kill it.
  const stopping = new AbortController();
  const stop = (signal: string) => {
    logger.info({ signal }, "stop requested");
    stopping.abort();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    const embedded = await openEmbeddedRuntime(config, { handlers, listen: true, logger });
    try {
      // Served before the first poll, so that a port that cannot be had fails the start.
      const page = options.ui
        ? await serveStatusPage(embedded.runtime, { ...options.ui, processMetrics: true }, logger)
        : null;
      if (page) out(`status page: ${page.url}  (metrics: ${page.url}metrics)`);
      try {
        return await listenOn(embedded, options, stopping, out);
      } finally {
        await page?.close();
      }
    } finally {
      await embedded.close();
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

async function listenOn(
  embedded: Awaited<ReturnType<typeof openEmbeddedRuntime>>,
  options: ListenOptions,
  stopping: AbortController,
  out: (line: string) => void,
): Promise<number> {
  const listener = new Listener(embedded, { drainMs: options.drainSeconds * 1000 });
  if (stopping.signal.aborted) listener.stop();
  else stopping.signal.addEventListener("abort", () => listener.stop(), { once: true });
  if (options.once) {
    // What a previous listener left is resumed too, then run to its end with this poll's.
    await listener.watchOnce();
    const report = await listener.pollOnce();
    await listener.untilIdle();
    // The dashboard down or the token refused: what the one poll was for did not happen.
    if (report === null) throw new LaasError(`the poll failed: ${listener.lastPollError}`);
    return 0;
  }
  const { finished, handedOver } = await listener.run();
  out(
    `listener stopped: ${finished.length} workflow(s) finished, ${handedOver.length} handed over` +
      (handedOver.length ? ` (${handedOver.join(", ")}; the next listener restarts them)` : ""),
  );
  return 0;
}
