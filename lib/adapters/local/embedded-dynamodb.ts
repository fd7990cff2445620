/**
 * The embedded default's DynamoDB: dynalite (the DynamoDB API over LevelDB) running inside this
 * process, so the same DynamoDB store adapter works on one machine with no cloud account.
 *
 * LevelDB allows ONE process per directory: whichever process opened it holds its LOCK file
 * until it closes. So a running listener owns the store directory, and every other command must
 * connect to that listener's endpoint instead of opening the directory itself; deciding which
 * of the two to do is up to the caller. Here a second opener gets a StoreLockedError up front
 * rather than a server whose every request fails.
 */
import { mkdir } from "node:fs/promises";
import type { Server } from "node:http";
import { createRequire } from "node:module";
import dynalite from "dynalite";
import { errorMessage, LaasError } from "../../errors";

/** The store directory is held by another process (or another instance in this one). */
export class StoreLockedError extends LaasError {
  override name = "StoreLocked";
}

export interface EmbeddedDynamoOptions {
  /** LevelDB directory, created if missing; null keeps everything in memory. */
  path: string | null;
  /** Defaults to 127.0.0.1: the store has no authentication, so it must not leave the machine. */
  host?: string;
  /** Defaults to 0: a free port chosen by the OS. */
  port?: number;
}

export interface EmbeddedDynamo {
  /** http://HOST:PORT, to give the DynamoDB client as its endpoint. */
  endpoint: string;
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

export async function startEmbeddedDynamo(options: EmbeddedDynamoOptions): Promise<EmbeddedDynamo> {
  if (options.path !== null) {
    await mkdir(options.path, { recursive: true });
    await assertDirectoryFree(options.path);
  }
  const server = dynalite({
    ...(options.path !== null ? { path: options.path } : {}),
    // Tables are ACTIVE at once: nothing here is worth waiting for.
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await listen(server, options.port ?? 0, options.host ?? "127.0.0.1");
  const endpoint = endpointOf(server);
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
      });
      return closing;
    },
  };
}
