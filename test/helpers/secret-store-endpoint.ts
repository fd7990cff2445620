/**
 * SSM Parameter Store and Secrets Manager as one HTTP endpoint on 127.0.0.1, speaking their
 * JSON protocol (awsJson1_1: POST /, X-Amz-Target, application/x-amz-json-1.1), so that the
 * AWS SDK clients pointed at it by AWS_ENDPOINT_URL take their real path. Errors are answered as
 * AWS sends them: HTTP 400 and `{"__type": "...", "message": "..."}`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const SSM_GET_PARAMETER = "AmazonSSM.GetParameter";
export const SECRETS_GET_SECRET_VALUE = "secretsmanager.GetSecretValue";

export interface SeenRequest {
  target: string;
  /** The parameter name or secret id asked for. */
  name: string;
  body: Record<string, unknown>;
  authorization: string;
  contentType: string;
}

export interface SecretStoreEndpoint {
  url: string;
  /** SSM parameter name -> value. */
  parameters: Map<string, string>;
  /** Secrets Manager SecretId (name or ARN, as asked) -> SecretString, or bytes for SecretBinary. */
  secrets: Map<string, string | Uint8Array>;
  /** Names (parameter or secret) whose requests are refused with AccessDeniedException. */
  denied: Set<string>;
  /** Answers the next `count` requests for `name` with this error type (throttling…). */
  failNext(name: string, type: string, count?: number): void;
  requests: SeenRequest[];
  /** Requests for one name. */
  asked(name: string): SeenRequest[];
  close(): Promise<void>;
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startSecretStoreEndpoint(): Promise<SecretStoreEndpoint> {
  const parameters = new Map<string, string>();
  const secrets = new Map<string, string | Uint8Array>();
  const denied = new Set<string>();
  const failures = new Map<string, string[]>();
  const requests: SeenRequest[] = [];

  const server = createServer((req, res) => {
    void (async () => {
      const target = String(req.headers["x-amz-target"] ?? "");
      const text = await readBody(req);
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      const name = String(target === SSM_GET_PARAMETER ? body.Name : body.SecretId);
      requests.push({
        target,
        name,
        body,
        authorization: String(req.headers.authorization ?? ""),
        contentType: String(req.headers["content-type"] ?? ""),
      });
      if (req.method !== "POST" || req.url !== "/") {
        answer(res, 404, { __type: "UnknownOperationException" });
        return;
      }
      const queued = failures.get(name);
      const failure = queued?.shift();
      if (failure) {
        const status = failure === "InternalServerError" ? 500 : 400;
        answer(res, status, { __type: failure, message: "Rate exceeded" });
        return;
      }
      if (denied.has(name)) {
        answer(res, 400, {
          __type: "AccessDeniedException",
          Message: `User: arn:aws:sts::123456789012:assumed-role/laas-test/fn is not authorized to perform: ${target} on resource: ${name}`,
        });
        return;
      }
      if (target === SSM_GET_PARAMETER) {
        const value = parameters.get(name);
        if (value === undefined) {
          answer(res, 400, { __type: "ParameterNotFound", message: "" });
          return;
        }
        answer(res, 200, {
          Parameter: {
            Name: name,
            Type: "SecureString",
            Value: value,
            Version: 1,
            ARN: `arn:aws:ssm:us-east-1:123456789012:parameter${name.startsWith("/") ? "" : "/"}${name}`,
            DataType: "text",
          },
        });
        return;
      }
      if (target === SECRETS_GET_SECRET_VALUE) {
        const value = secrets.get(name);
        if (value === undefined) {
          answer(res, 400, {
            __type: "ResourceNotFoundException",
            Message: "Secrets Manager can't find the specified secret.",
          });
          return;
        }
        const arn = name.startsWith("arn:")
          ? name
          : `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`;
        answer(res, 200, {
          ARN: arn,
          Name: name,
          VersionId: "00000000-0000-0000-0000-000000000001",
          VersionStages: ["AWSCURRENT"],
          CreatedDate: 1_700_000_000,
          ...(typeof value === "string"
            ? { SecretString: value }
            : { SecretBinary: Buffer.from(value).toString("base64") }),
        });
        return;
      }
      answer(res, 400, { __type: "UnknownOperationException", message: target });
    })().catch((error: unknown) => {
      answer(res, 500, { __type: "InternalServerError", message: String(error) });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    parameters,
    secrets,
    denied,
    failNext(name, type, count = 1) {
      failures.set(name, [...(failures.get(name) ?? []), ...Array<string>(count).fill(type)]);
    },
    requests,
    asked: (name) => requests.filter((r) => r.name === name),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
