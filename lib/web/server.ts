/**
 * The page on one machine: lib/web/app.ts behind node:http. On loopback it may go without a
 * token; anywhere else it refuses to start without one, since the page shows every booking and
 * host of the lab.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { ConfigError, errorMessage } from "../errors";
import type { Logger } from "../log";
import type { Secret } from "../secret";
import type { WebApp } from "./app";
import { isLoopback } from "./auth";

export interface WebServerOptions {
  address: string;
  /** 0 picks a free port (tests). */
  port: number;
  token: Secret | null;
  logger: Logger;
}

export interface RunningWebServer {
  /** http://address:port/ */
  url: string;
  close(): Promise<void>;
}

export function requireTokenOffLoopback(address: string, token: Secret | null): void {
  if (token === null && !isLoopback(address)) {
    throw new ConfigError(
      `web.address: ${address} is reachable from other machines; set web.token (a secret: a file, ` +
        "an ssm: or secretsmanager: reference) or serve on 127.0.0.1",
    );
  }
}

export async function startWebServer(
  app: WebApp,
  options: WebServerOptions,
): Promise<RunningWebServer> {
  requireTokenOffLoopback(options.address, options.token);
  const server = createServer((request, response) => {
    serve(app, request, response).catch((error: unknown) => {
      options.logger.warn({ err: errorMessage(error) }, "web request failed");
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  // Polling viewers keep connections alive; close() must not wait for them.
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new ConfigError(
              `web: ${options.address}:${options.port} is in use; pick another --port`,
            )
          : error,
      ),
    );
    server.listen(options.port, options.address, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : options.port;
  const host = options.address.includes(":") ? `[${options.address}]` : options.address;
  const url = `http://${host}:${port}/`;
  options.logger.info({ url, token: options.token !== null }, "status page served");
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function serve(app: WebApp, request: IncomingMessage, response: ServerResponse) {
  const url = new URL(request.url ?? "/", "http://localhost");
  const answer = await app({
    method: request.method ?? "GET",
    path: url.pathname,
    query: url.searchParams,
    headers: { authorization: request.headers.authorization, cookie: request.headers.cookie },
  });
  response.writeHead(answer.status, answer.headers);
  response.end(request.method === "HEAD" ? undefined : answer.body);
}
