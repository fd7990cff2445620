/**
 * Step Functions' GetExecutionHistory as the SDK reaches it: the awsJson1_0 protocol over HTTP on
 * 127.0.0.1 and a free port, serving the histories it is given (events in the wire shape,
 * timestamps in epoch seconds), keyed by execution ARN.
 *
 * As strict as the API reference: requests must be POSTs to `/`, signed for the `states`
 * service (a SigV4 Authorization header; the signature itself is not checked) and JSON; a page holds at most maxResults events (100 when absent or 0; more than 1000 is refused);
 * a nextToken is opaque, and one it never gave, or given again with other arguments, is refused
 * with InvalidToken; an ARN that is not an execution's is InvalidArn, an unknown one
 * ExecutionDoesNotExist. Events keep their input and output (`input`, `output` and their
 * `*Details`) unless includeExecutionData is false. Every request and answer is recorded.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One history event as the service sends it: `timestamp` in seconds since the epoch. */
export interface WireHistoryEvent {
  id: number;
  previousEventId?: number;
  timestamp?: number;
  type: string;
  [details: string]: unknown;
}

export interface HistoryExchange {
  /** The request body as received. */
  request: Record<string, unknown>;
  status: number;
  /** The answer body as sent. */
  answer: string;
}

export interface StepFunctionsHistorySim {
  endpoint: string;
  /** Histories by execution ARN; may be changed while the server runs. */
  histories: Map<string, WireHistoryEvent[]>;
  /** Every GetExecutionHistory call, in order. */
  exchanges: HistoryExchange[];
  close(): Promise<void>;
}

const TARGET = "AWSStepFunctions.GetExecutionHistory";
const CONTENT_TYPE = "application/x-amz-json-1.0";
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1_000;
const EXECUTION_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/;
/** The fields GetExecutionHistory leaves out with includeExecutionData false. */
const EXECUTION_DATA = new Set(["input", "inputDetails", "output", "outputDetails"]);

/** What a nextToken continues: the page's arguments, which must come back unchanged. */
interface Continuation {
  executionArn: string;
  maxResults: number;
  includeExecutionData: boolean;
  reverseOrder: boolean;
  offset: number;
}

class ServiceError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startStepFunctionsHistory(
  histories: Map<string, WireHistoryEvent[]> = new Map(),
): Promise<StepFunctionsHistorySim> {
  const exchanges: HistoryExchange[] = [];
  const continuations = new Map<string, Continuation>();

  const page = (request: Record<string, unknown>): unknown => {
    const { executionArn, maxResults = 0, nextToken, includeExecutionData = true } = request;
    const { reverseOrder = false } = request;
    if (typeof executionArn !== "string") {
      throw new ServiceError(400, "ValidationException", "executionArn is required");
    }
    if (typeof includeExecutionData !== "boolean" || typeof reverseOrder !== "boolean") {
      throw new ServiceError(400, "SerializationException", "expected a boolean");
    }
    if (typeof maxResults !== "number" || !Number.isInteger(maxResults) || maxResults < 0) {
      throw new ServiceError(400, "SerializationException", "maxResults must be an integer");
    }
    if (maxResults > MAX_PAGE) {
      throw new ServiceError(
        400,
        "ValidationException",
        `1 validation error detected: Value '${maxResults}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to ${MAX_PAGE}`,
      );
    }
    if (!EXECUTION_ARN.test(executionArn)) {
      throw new ServiceError(400, "InvalidArn", `Invalid Arn: '${executionArn}'`);
    }
    const events = histories.get(executionArn);
    if (!events) {
      throw new ServiceError(
        400,
        "ExecutionDoesNotExist",
        `Execution Does Not Exist: '${executionArn}'`,
      );
    }
    const size = maxResults === 0 ? DEFAULT_PAGE : maxResults;
    let offset = 0;
    if (nextToken !== undefined) {
      const continued = typeof nextToken === "string" ? continuations.get(nextToken) : undefined;
      if (
        !continued ||
        continued.executionArn !== executionArn ||
        continued.maxResults !== size ||
        continued.includeExecutionData !== includeExecutionData ||
        continued.reverseOrder !== reverseOrder
      ) {
        throw new ServiceError(400, "InvalidToken", `Invalid Token: '${String(nextToken)}'`);
      }
      offset = continued.offset;
    }
    const ordered = reverseOrder ? [...events].reverse() : events;
    const served = ordered.slice(offset, offset + size);
    const answer: { events: unknown[]; nextToken?: string } = {
      events: served.map((event) => (includeExecutionData ? event : withoutData(event))),
    };
    if (offset + size < ordered.length) {
      const token = randomBytes(48).toString("base64");
      continuations.set(token, {
        executionArn,
        maxResults: size,
        includeExecutionData,
        reverseOrder,
        offset: offset + size,
      });
      answer.nextToken = token;
    }
    return answer;
  };

  const handle = (request: IncomingMessage, body: string, response: ServerResponse) => {
    let status = 200;
    let json: unknown;
    let parsed: Record<string, unknown> = {};
    try {
      if (request.method !== "POST" || request.url !== "/") {
        throw new ServiceError(
          404,
          "UnknownOperationException",
          `${request.method} ${request.url}`,
        );
      }
      const authorization = String(request.headers.authorization ?? "");
      if (
        !/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/states\/aws4_request,/.test(
          authorization,
        )
      ) {
        throw new ServiceError(
          403,
          "MissingAuthenticationTokenException",
          "Missing Authentication Token",
        );
      }
      if (request.headers["content-type"] !== CONTENT_TYPE) {
        throw new ServiceError(
          400,
          "SerializationException",
          "expected application/x-amz-json-1.0",
        );
      }
      const target = request.headers["x-amz-target"];
      if (target !== TARGET) {
        throw new ServiceError(400, "UnknownOperationException", String(target));
      }
      try {
        parsed = JSON.parse(body) as Record<string, unknown>;
      } catch {
        throw new ServiceError(400, "SerializationException", "the body is not JSON");
      }
      json = page(parsed);
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error;
      status = error.status;
      json = { __type: `com.amazonaws.sfn#${error.type}`, message: error.message };
    }
    const answer = JSON.stringify(json);
    exchanges.push({ request: parsed, status, answer });
    response.writeHead(status, { "content-type": CONTENT_TYPE, "x-amzn-requestid": randomUUID() });
    response.end(answer);
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => handle(request, Buffer.concat(chunks).toString("utf8"), response));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    histories,
    exchanges,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The event with its `*EventDetails` stripped of inputs and outputs. */
function withoutData(event: WireHistoryEvent): WireHistoryEvent {
  const copy: WireHistoryEvent = { ...event };
  for (const [key, value] of Object.entries(event)) {
    if (!key.endsWith("EventDetails") || typeof value !== "object" || value === null) continue;
    copy[key] = Object.fromEntries(
      Object.entries(value).filter(([field]) => !EXECUTION_DATA.has(field)),
    );
  }
  return copy;
}
