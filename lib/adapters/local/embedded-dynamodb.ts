/**
 * The embedded default's DynamoDB: dynalite (the DynamoDB API over LevelDB) running inside this
 * process, so the same DynamoDB store adapter works on one machine with no cloud account.
 *
 * LevelDB allows ONE process per directory: whichever process opened it holds its LOCK file
 * until it closes. So a running listener owns the store directory, and every other command must
 * connect to that listener's endpoint instead of opening the directory itself; deciding which
 * of the two to do is up to the caller. Here a second opener gets a StoreLockedError up front
 * rather than a server whose every request fails.
 *
 * dynalite itself accepts any request on its port, from any local user, and answers browsers'
 * CORS preflights with `Access-Control-Allow-Origin: *`. So every request first passes a guard
 * here: it must be signed (AWS SigV4, as the SDK signs) with this run's random credential, which
 * only the store's owner is given (see StoreCredentials), and nothing from a browser (an `Origin`
 * header, an OPTIONS preflight) is let through.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import dynalite from "dynalite";
import { errorMessage, LaasError } from "../../errors";
import { keepNewFilesOwnerOnly, ownerOnlyFilesIn, ownerOnlyFolder } from "../../owner-only";
import { settledWithin } from "../../time";

/** The store directory is held by another process (or another instance in this one). */
export class StoreLockedError extends LaasError {
  override name = "StoreLocked";
}

/**
 * The credential every request to an embedded store must be signed with: random for each start,
 * kept in memory and, for a listener, in its owner-only listener.json.
 */
export interface StoreCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface EmbeddedDynamoOptions {
  /** LevelDB directory, created (0700) if missing; null keeps everything in memory. */
  path: string | null;
  /** Defaults to 127.0.0.1: the store must not leave the machine. */
  host?: string;
  /** Defaults to 0: a free port chosen by the OS. */
  port?: number;
}

export interface EmbeddedDynamo {
  /** http://HOST:PORT, to give the DynamoDB client as its endpoint. */
  endpoint: string;
  /** To give the DynamoDB client: requests signed with anything else are refused. */
  credentials: StoreCredentials;
  /** Stops listening and closes the LevelDB store, releasing its directory. */
  close(): Promise<void>;
}

interface LevelDatabase {
  open(): Promise<void>;
  close(): Promise<void>;
}

interface LevelModule {
  Level: new (location: string) => LevelDatabase;
}

function errorCode(error: unknown): unknown {
  return error instanceof Error ? Reflect.get(error, "code") : undefined;
}

/**
 * Opens and closes the directory with the LevelDB binding dynalite itself uses (resolved from
 * dynalite's own location, so it is the same module and version). dynalite opens its database
 * lazily and crashes on the first request when the open failed, so the lock is checked here.
 */
async function assertDirectoryFree(path: string): Promise<void> {
  const requireFromDynalite = createRequire(createRequire(import.meta.url).resolve("dynalite"));
  const level: LevelModule = requireFromDynalite("level");
  const database = new level.Level(path);
  try {
    await database.open();
  } catch (error) {
    const cause: unknown = error instanceof Error ? error.cause : undefined;
    if (errorCode(cause) === "LEVEL_LOCKED") {
      throw new StoreLockedError(
        `The store at ${path} is in use by another process (LevelDB allows one per directory); connect to that process's endpoint instead`,
        { cause: error },
      );
    }
    throw new LaasError(`Cannot open the store at ${path}: ${errorMessage(cause ?? error)}`, {
      cause: error,
    });
  }
  await database.close();
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function endpointOf(server: Server): string {
  const address = server.address();
  if (address === null || typeof address === "string") {
    throw new LaasError("The embedded DynamoDB is not listening on a TCP port");
  }
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** dynalite's own limit on a request's size. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** How far a request's signing time may be from now, as DynamoDB allows. */
const MAX_CLOCK_SKEW_MS = 15 * 60_000;
/** Headers dynalite acts on: when a request carries one, the signature must cover it. */
const MUST_BE_SIGNED = [
  "host",
  "x-amz-date",
  "x-amz-target",
  "content-type",
  "x-amz-content-sha256",
];

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request, ?SignedHeaders=([^\s,=]+), ?Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

interface Refusal {
  /** The DynamoDB error name the SDK reports it as. */
  type: string;
  message: string;
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

/**
 * Checks a request's SigV4 signature the only sound way: sign the same request again with the
 * store's secret and compare the two signatures (in constant time). The payload hash is taken from
 * the body received, never from what the request says it is.
 */
async function verifySignature(
  request: IncomingMessage,
  body: Buffer,
  credentials: StoreCredentials,
): Promise<Refusal | null> {
  const authorization = headerValue(request, "authorization");
  if (authorization === undefined) {
    return {
      type: "MissingAuthenticationTokenException",
      message: "the request is not signed (AWS SigV4) with this store's credential",
    };
  }
  const parsed = AUTHORIZATION.exec(authorization.trim());
  if (!parsed) {
    return {
      type: "IncompleteSignatureException",
      message: "the Authorization header is not AWS SigV4",
    };
  }
  const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = parsed;
  if (accessKeyId !== credentials.accessKeyId) {
    return { type: "UnrecognizedClientException", message: "the access key is not this store's" };
  }
  const amzDate = headerValue(request, "x-amz-date") ?? "";
  const date = AMZ_DATE.exec(amzDate);
  const signedAt = date
    ? Date.UTC(+date[1]!, +date[2]! - 1, +date[3]!, +date[4]!, +date[5]!, +date[6]!)
    : Number.NaN;
  if (Number.isNaN(signedAt) || !amzDate.startsWith(scopeDate!)) {
    return { type: "IncompleteSignatureException", message: "the request has no valid X-Amz-Date" };
  }
  if (Math.abs(Date.now() - signedAt) > MAX_CLOCK_SKEW_MS) {
    return {
      type: "InvalidSignatureException",
      message: "the request was signed more than 15 minutes from now",
    };
  }
  const signedNames = signedHeaderList!.split(";");
  const unsigned = MUST_BE_SIGNED.filter(
    (name) =>
      (name === "host" || name === "x-amz-date" || request.headers[name] !== undefined) &&
      !signedNames.includes(name),
  );
  if (unsigned.length > 0) {
    return {
      type: "InvalidSignatureException",
      message: `the signature does not cover ${unsigned.join(", ")}`,
    };
  }
  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = headerValue(request, name);
    if (value === undefined) {
      return { type: "InvalidSignatureException", message: `signed header ${name} is missing` };
    }
    headers[name] = value;
  }
  const bodyHash = createHash("sha256").update(body).digest("hex");
  if (
    headers["x-amz-content-sha256"] !== undefined &&
    headers["x-amz-content-sha256"] !== bodyHash
  ) {
    return {
      type: "InvalidSignatureException",
      message: "X-Amz-Content-Sha256 is not the hash of the body received",
    };
  }
  const url = new URL(request.url ?? "/", "http://embedded-store");
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0]! : values;
  }
  const signer = new SignatureV4({
    service: service!,
    region: region!,
    credentials,
    sha256: Sha256,
    applyChecksum: false,
  });
  const again = await signer.sign(
    {
      method: request.method ?? "",
      protocol: "http:",
      hostname: url.hostname,
      path: url.pathname,
      query,
      headers,
      body,
    },
    { signingDate: new Date(signedAt), signableHeaders: new Set(signedNames) },
  );
  const expected = AUTHORIZATION.exec(again.headers.authorization ?? "");
  const matches =
    expected !== null &&
    expected[5] === signedHeaderList &&
    timingSafeEqual(Buffer.from(expected[6]!, "hex"), Buffer.from(signature!, "hex"));
  return matches
    ? null
    : {
        type: "InvalidSignatureException",
        message: "the signature does not match this store's credential",
      };
}

function answer(response: ServerResponse, status: number, refusal: Refusal): void {
  const body = JSON.stringify({
    __type: `com.amazonaws.dynamodb.v20120810#${refusal.type}`,
    message: refusal.message,
  });
  response.writeHead(status, {
    "content-type": "application/x-amz-json-1.0",
    "content-length": Buffer.byteLength(body),
    connection: "close",
  });
  response.end(body);
}

/** The whole body, or null when it is over dynalite's limit. */
function readBody(request: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        request.removeAllListeners("data");
        request.removeAllListeners("end");
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    request.once("end", () => resolve(Buffer.concat(chunks)));
    request.once("error", reject);
  });
}

/** The guarded requests under way, and whether the store has begun to close. */
interface Traffic {
  inFlight: Set<Promise<void>>;
  closing: boolean;
}

/**
 * Puts the guard in front of dynalite's request handler: dynalite gets only the requests that
 * pass it, as a replay of the same request (the guard has read the body to check its hash).
 *
 * The guard reads the body before dynalite sees the request, so a client that goes away during
 * that read ends its connection while the request is still on its way to dynalite, and dynalite
 * closes its database once no connection is left. Requests are therefore tracked until their
 * response is done, close() waits for them first, and a request arriving once closing began, or
 * whose client is gone, never reaches dynalite.
 */
function guard(server: Server, credentials: StoreCredentials, traffic: Traffic): void {
  const handlers = server.listeners("request");
  // One handler, taken out and called only from here: any other would bypass the guard.
  if (handlers.length !== 1) {
    throw new LaasError(`dynalite's server has ${handlers.length} request handlers, expected one`);
  }
  server.removeAllListeners("request");
  /** Answers the request, or hands it to dynalite (true: dynalite will write the answer). */
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<boolean> => {
    // A browser's request (any page's script, a DNS-rebinding one) carries an Origin, and a
    // preflight asks whether one may follow: the store answers neither.
    if (request.headers.origin !== undefined || request.method === "OPTIONS") {
      answer(response, 403, {
        type: "AccessDeniedException",
        message: "requests from browsers (with an Origin header, or CORS preflights) are refused",
      });
      return false;
    }
    const body = await readBody(request);
    if (body === null) {
      answer(response, 413, { type: "RequestEntityTooLarge", message: "the request is too large" });
      return false;
    }
    const refusal = await verifySignature(request, body, credentials);
    if (refusal) {
      answer(response, 403, refusal);
      return false;
    }
    // The client is gone: dynalite would see the whole body and act for nobody.
    if (request.socket.destroyed) return false;
    if (traffic.closing) {
      answer(response, 503, { type: "ServiceUnavailable", message: "the store is closing" });
      return false;
    }
    const replay = Object.assign(Readable.from(body.length > 0 ? [body] : []), {
      headers: request.headers,
      method: request.method,
      url: request.url,
    });
    for (const handler of handlers) Reflect.apply(handler, server, [replay, response]);
    return true;
  };
  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    // Under way until an answer is written (by the guard or by dynalite, which writes one even
    // to a client that left), or the guard gives up on it: not merely until the socket closes.
    let finish = (): void => undefined;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    traffic.inFlight.add(done);
    void done.then(() => traffic.inFlight.delete(done));
    response.end = new Proxy(response.end, {
      apply(target, thisArg, args) {
        finish();
        return Reflect.apply(target, thisArg, args);
      },
    });
    handle(request, response)
      .then((handedOver) => {
        if (!handedOver) finish();
      })
      .catch((error: unknown) => {
        finish();
        if (response.headersSent) {
          response.destroy();
          return;
        }
        answer(response, 500, { type: "InternalServerError", message: errorMessage(error) });
      });
  });
}

/** How long close() waits for requests under way before it stops answering. */
const CLOSE_DRAIN_MS = 5_000;

function newCredentials(): StoreCredentials {
  return {
    accessKeyId: `LAAS${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(32).toString("base64url"),
  };
}

/**
 * Makes the store folder owner-only, and keeps the files LevelDB will make in it so until the
 * returned function is called. The umask is the process's: in a worker thread it cannot be set,
 * so this runs in the main thread even when the store is served from another.
 */
export async function prepareStoreFolder(path: string | null): Promise<() => void> {
  if (path === null) return () => undefined;
  await ownerOnlyFolder(path, "the store's LevelDB folder");
  await ownerOnlyFilesIn(path);
  return keepNewFilesOwnerOnly();
}

/** Serves dynalite behind the guard in this thread; the folder is prepared by the caller. */
export async function serveDynalite(options: EmbeddedDynamoOptions): Promise<EmbeddedDynamo> {
  if (options.path !== null) await assertDirectoryFree(options.path);
  const server = dynalite({
    ...(options.path !== null ? { path: options.path } : {}),
    // Tables are ACTIVE at once: nothing here is worth waiting for.
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  const credentials = newCredentials();
  const traffic: Traffic = { inFlight: new Set(), closing: false };
  guard(server, credentials, traffic);
  await listen(server, options.port ?? 0, options.host ?? "127.0.0.1");
  const endpoint = endpointOf(server);
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    credentials,
    close() {
      closing ??= (async () => {
        // Requests under way (and any that come meanwhile) are answered; none after that. A
        // client that never finishes its request does not hold the close up for long.
        const drained = (async () => {
          while (traffic.inFlight.size > 0) await Promise.allSettled([...traffic.inFlight]);
        })();
        await settledWithin(drained, CLOSE_DRAIN_MS);
        traffic.closing = true;
        await new Promise<void>((resolve, reject) => {
          server.close((error) => (error ? reject(error) : resolve()));
        });
      })();
      return closing;
    },
  };
}

/** Serves the store in this thread (see embedded-dynamodb-thread.ts for one of its own). */
export async function startEmbeddedDynamo(options: EmbeddedDynamoOptions): Promise<EmbeddedDynamo> {
  const releaseUmask = await prepareStoreFolder(options.path);
  try {
    const served = await serveDynalite(options);
    return { ...served, close: () => served.close().finally(releaseUmask) };
  } catch (error) {
    releaseUmask();
    throw error;
  }
}
