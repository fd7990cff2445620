/**
 * An HTTP proxy on 127.0.0.1 in front of a DynamoDB endpoint (dynalite) that counts what reaches
 * the store: each request by its operation (the `X-Amz-Target` header), whether it was answered
 * with an error (a failed conditional write is a 400, and billed all the same), and how many were
 * under way at once. Requests pass unchanged, Host header included, so their signature holds.
 */
import {
  Agent,
  createServer,
  request as forward,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";

/** Operations that write (billed as writes, failed or not). */
export const WRITE_OPERATIONS: ReadonlySet<string> = new Set([
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "BatchWriteItem",
  "TransactWriteItems",
]);

export interface RequestCounts {
  /** Requests by operation ("GetItem", "PutItem", "Scan", …). */
  byOperation: Record<string, number>;
  /** Of those, the ones answered with an error (e.g. ConditionalCheckFailedException). */
  failedByOperation: Record<string, number>;
  total: number;
  writes: number;
  failedWrites: number;
  /** Most requests under way at once. */
  mostAtOnce: number;
}

export interface CountingProxy {
  /** To give a DynamoDB client instead of the store's own endpoint. */
  readonly endpoint: string;
  /** What reached the store since the start or the last reset. */
  counts(): RequestCounts;
  reset(): void;
  close(): Promise<void>;
}

const TARGET_PREFIX = "DynamoDB_20120810.";

function operationOf(request: IncomingMessage): string {
  const target = request.headers["x-amz-target"];
  const value = Array.isArray(target) ? target.join(",") : (target ?? "(none)");
  return value.startsWith(TARGET_PREFIX) ? value.slice(TARGET_PREFIX.length) : value;
}

function bump(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let byOperation: Record<string, number> = {};
  let failedByOperation: Record<string, number> = {};
  let underWay = 0;
  let mostAtOnce = 0;

  const server = createServer((incoming: IncomingMessage, outgoing: ServerResponse) => {
    const operation = operationOf(incoming);
    bump(byOperation, operation);
    underWay += 1;
    mostAtOnce = Math.max(mostAtOnce, underWay);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      underWay -= 1;
    };
    const upstream = forward(
      {
        host: to.hostname,
        port: to.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
        agent,
      },
      (answer) => {
        if ((answer.statusCode ?? 500) >= 400) bump(failedByOperation, operation);
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
        answer.once("end", finish);
        answer.once("error", finish);
      },
    );
    upstream.once("error", (error) => {
      finish();
      bump(failedByOperation, operation);
      if (!outgoing.headersSent) outgoing.writeHead(502);
      outgoing.end(String(error));
    });
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts() {
      const sum = (of: Record<string, number>, only?: ReadonlySet<string>) =>
        Object.entries(of)
          .filter(([name]) => only === undefined || only.has(name))
          .reduce((total, [, n]) => total + n, 0);
      return {
        byOperation: { ...byOperation },
        failedByOperation: { ...failedByOperation },
        total: sum(byOperation),
        writes: sum(byOperation, WRITE_OPERATIONS),
        failedWrites: sum(failedByOperation, WRITE_OPERATIONS),
        mostAtOnce,
      };
    },
    reset() {
      byOperation = {};
      failedByOperation = {};
      mostAtOnce = underWay;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
