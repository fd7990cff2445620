/**
 * Step Functions' StartExecution as the SDK sees it over HTTP (the awsJson1_0 protocol), answered
 * after a fixed delay, for bench/burst.ts: what starting a booking costs on AWS is the store's
 * requests and one StartExecution, whose time is the network's and the service's, not this
 * machine's. A second start of a name answers ExecutionAlreadyExists, as the service does. Only
 * StartExecution is served (poll starts due phases and asks nothing else of a new booking).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SFNClient } from "@aws-sdk/client-sfn";
import { StepFunctionsEngine } from "../lib/adapters/aws/sfn-engine";

export interface SfnStandIn {
  engine: StepFunctionsEngine;
  /** When each execution's StartExecution arrived (ms since the epoch), by name. */
  startedAt: Map<string, number>;
  close(): Promise<void>;
}

const ACCOUNT = "arn:aws:states:us-east-1:123456789012";

export async function startSfnStandIn(latencyMs: number): Promise<SfnStandIn> {
  const startedAt = new Map<string, number>();
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const arrived = Date.now();
      const target = String(request.headers["x-amz-target"] ?? "");
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as {
        name?: string;
      };
      const answer = (status: number, json: unknown) =>
        setTimeout(() => {
          response.writeHead(status, { "content-type": "application/x-amz-json-1.0" });
          response.end(JSON.stringify(json));
        }, latencyMs);
      if (target !== "AWSStepFunctions.StartExecution" || !body.name) {
        answer(400, { __type: "UnknownOperationException", message: target });
        return;
      }
      if (startedAt.has(body.name)) {
        answer(400, { __type: "ExecutionAlreadyExists", message: `${body.name} exists` });
        return;
      }
      startedAt.set(body.name, arrived);
      answer(200, {
        executionArn: `${ACCOUNT}:execution:x:${body.name}`,
        startDate: arrived / 1000,
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const client = new SFNClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  });
  const engine = new StepFunctionsEngine(client, {
    provision: `${ACCOUNT}:stateMachine:provision`,
    release: `${ACCOUNT}:stateMachine:release`,
  });
  return {
    engine,
    startedAt,
    close: async () => {
      client.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
