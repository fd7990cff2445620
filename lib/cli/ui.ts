/**
 * `laas ui`: the status page and /metrics on this machine (lib/web/). Beside a running listener
 * it reads through the listener's store; with none running it holds the store itself, as
 * `laas status` does while it reads — then a listener cannot start until it stops, so
 * `laas listen --ui` is the way to have both.
 */
import type { StepHandler } from "../adapters/local/local-engine";
import { openEmbeddedRuntime } from "../app/embedded";
import { webAppFor } from "../app/web";
import { loadPharosConfig } from "../config/load";
import type { Logger } from "../log";
import { createLogger } from "../log";
import type { Runtime } from "../ports/runtime";
import { type RunningWebServer, startWebServer } from "../web/server";
import { EXIT } from "./exit";

export interface UiOptions {
  config: string;
  /** Overrides pharos.yaml's web.address / web.port. */
  address?: string;
  port?: number;
}

/** Serves the page for `rt` where the options and pharos.yaml's `web:` say (loopback:8080). */
export function serveStatusPage(
  rt: Runtime,
  options: { address?: string; port?: number; processMetrics?: boolean },
  logger: Logger,
): Promise<RunningWebServer> {
  const web = rt.config.web;
  return startWebServer(webAppFor(rt, { processMetrics: options.processMetrics ?? false }), {
    address: options.address ?? web?.address ?? "127.0.0.1",
    port: options.port ?? web?.port ?? 8080,
    token: web?.token ?? null,
    logger,
  });
}

export async function uiCommand(
  options: UiOptions,
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
): Promise<number> {
  const config = await loadPharosConfig(options.config);
  const logger = createLogger({ level: process.env.LAAS_LOG_LEVEL ?? "warn" });
  const stopping = new AbortController();
  const stop = () => stopping.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    const embedded = await openEmbeddedRuntime(config, { handlers, listen: false, logger });
    try {
      const server = await serveStatusPage(embedded.runtime, options, logger);
      out(`status page: ${server.url}  (metrics: ${server.url}metrics; Ctrl-C stops)`);
      if (!stopping.signal.aborted) {
        await new Promise<void>((resolve) =>
          stopping.signal.addEventListener("abort", () => resolve(), { once: true }),
        );
      }
      await server.close();
      return EXIT.ok;
    } finally {
      await embedded.close();
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}
