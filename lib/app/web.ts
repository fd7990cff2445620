/**
 * The status page's parts from a Runtime: the same for `laas ui`, `laas listen --ui` (lib/cli/)
 * and the cloud's web function (functions/web.ts).
 */
import { installerConfigFor } from "../config/lookup";
import type { Runtime } from "../ports/runtime";
import { createWebApp, type WebApp } from "../web/app";
import { fogQueueOf, metricsText } from "../web/metrics";

export interface WebAppOptions {
  /** Mark the token cookie Secure (https). */
  secureCookie?: boolean;
  /** Node.js process figures in /metrics (a long-running listener). */
  processMetrics?: boolean;
}

export function webAppFor(rt: Runtime, options: WebAppOptions = {}): WebApp {
  // FOG's queue is read on the clean image's server: the one every host is reimaged from.
  const imager = rt.imagerFor(rt.config.cleanConfig.fog);
  return createWebApp({
    store: rt.store,
    engine: rt.engine,
    installerConfigFor: (installer) => installerConfigFor(rt.config, installer),
    metrics: () =>
      metricsText(
        { store: rt.store, now: () => rt.now(), fogQueue: fogQueueOf(imager) },
        { processMetrics: options.processMetrics ?? false },
      ),
    token: rt.config.web?.token ?? null,
    secureCookie: options.secureCookie ?? false,
  });
}
