/**
 * The embedded default's store: the same DynamoDB adapter the cloud uses, against dynalite running
 * in this process — in a thread of its own for a listener (embedded-dynamodb-thread.ts: the
 * store's work and the listener's then use a core each) — and persisted under the configured
 * `database` directory.
 *
 * LevelDB admits one process per directory. The listener owns it and publishes its endpoint, the
 * credential its endpoint accepts, and its pid (for `laas stop`) in `listener.json`; other commands
 * (`laas status`, `reset-db`, `deploy`) talk to that endpoint while a listener runs, and open the
 * directory themselves otherwise.
 *
 * The store is its owner's alone: the `database` folder is 0700 (an existing one is tightened,
 * one of another user or a shared one refused) and listener.json 0600, so only the owner can read
 * the credential, and the endpoint refuses every request not signed with it.
 */
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { DynamoDbExecutionJournal } from "../adapters/aws/dynamodb-journal";
import { DynamoDbStore } from "../adapters/aws/dynamodb-store";
import { createDynamoClient } from "../adapters/aws/dynamodb-tables";
import {
  type StoreCredentials,
  StoreLockedError,
  startEmbeddedDynamo,
} from "../adapters/local/embedded-dynamodb";
import {
  startEmbeddedDynamoThread,
  storeThreadAvailable,
} from "../adapters/local/embedded-dynamodb-thread";
import type { ExecutionJournal } from "../adapters/local/journal";
import { isRunning, type ProcessId, thisProcess } from "../adapters/local/process-identity";
import { errorMessage, LaasError } from "../errors";
import { ownerOnlyFolder, writeOwnerOnlyFile } from "../owner-only";
import type { Store } from "../ports/store";

/** What listener.json says about the listener, as `laas status` shows it. */
export interface ListenerRecord {
  pid: number;
  /** The listener process's start time (see process-identity.ts), null where unknown. */
  startTicks: number | null;
  endpoint: string;
  startedAt: string;
}

/** listener.json as written: the record, and the credential the endpoint accepts. */
export interface ListenerFile extends ListenerRecord {
  credentials: StoreCredentials;
}

const listenerFileSchema = z.object({
  pid: z.number().int().positive(),
  startTicks: z.number().int().nonnegative().nullable(),
  endpoint: z.url(),
  startedAt: z.string(),
  credentials: z.object({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1) }),
});

export interface StoreHandle {
  store: Store;
  /** The local engine's executions, in the same database. */
  journal: ExecutionJournal;
  endpoint: string;
  /** True when this process runs the dynalite (and must keep running for others to use it). */
  owner: boolean;
  /** The process that runs workflows on this store: this one, or the running listener. */
  runner: ProcessId;
  close(): Promise<void>;
}

export function listenerRecordPath(database: string): string {
  return join(database, "listener.json");
}

/** The record without its credential: what may be shown. */
export function publicRecord(file: ListenerFile): ListenerRecord {
  return {
    pid: file.pid,
    startTicks: file.startTicks,
    endpoint: file.endpoint,
    startedAt: file.startedAt,
  };
}

/** What listener.json held before it carried the endpoint's credential. */
const earlierListenerRecord = z.object({
  pid: z.int().positive(),
  startTicks: z.number().nullish(),
  endpoint: z.string(),
});

/**
 * listener.json as it is (running listener or not), or null if there is none or it is an
 * earlier version's record whose process is gone.
 */
export async function readListenerFile(database: string): Promise<ListenerFile | null> {
  const path = listenerRecordPath(database);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new LaasError(`Cannot read ${path}: ${errorMessage(error)}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = listenerFileSchema.safeParse(json);
  if (!parsed.success) {
    // A record an earlier laas wrote (no credential): stale once its process is gone, so an
    // upgrade after a crash needs no hand-editing; a listener of that version still running
    // cannot be talked to and must be stopped by its own version.
    const earlier = earlierListenerRecord.safeParse(json);
    if (earlier.success) {
      const process = { pid: earlier.data.pid, startTicks: earlier.data.startTicks ?? null };
      if (!isRunning(process)) return null;
      throw new LaasError(
        `${path}: a listener started by an earlier laas runs on this store (pid ` +
          `${earlier.data.pid}); stop it (\`kill ${earlier.data.pid}\`) and start \`laas listen\` again`,
      );
    }
    throw new LaasError(
      `${path} is not a listener record this laas can use (it lacks a valid pid, endpoint or ` +
        "credential); if no `laas listen` runs on this store, remove the file",
    );
  }
  return parsed.data;
}

async function runningListenerFile(database: string): Promise<ListenerFile | null> {
  const file = await readListenerFile(database);
  return file && isRunning(listenerProcess(file)) ? file : null;
}

/** The running listener's record, or null if none runs (a stale record is ignored). */
export async function runningListener(database: string): Promise<ListenerRecord | null> {
  const file = await runningListenerFile(database);
  return file && publicRecord(file);
}

export function listenerProcess(record: ListenerRecord): ProcessId {
  return { pid: record.pid, startTicks: record.startTicks ?? null };
}

/**
 * Opens the store under `database`. With `listen`, this process becomes the owner and publishes
 * its endpoint; it refuses if another listener already runs.
 */
export async function openEmbeddedStore(
  database: string,
  options: { listen: boolean },
): Promise<StoreHandle> {
  await ownerOnlyFolder(database, "the store folder");
  const running = await runningListenerFile(database);
  if (running && running.pid !== process.pid) {
    if (options.listen) {
      throw new StoreLockedError(
        `a listener already runs on ${database} (pid ${running.pid}); stop it with \`laas stop\``,
      );
    }
    const client = createDynamoClient({
      endpoint: running.endpoint,
      credentials: running.credentials,
    });
    const store = await DynamoDbStore.open(client);
    const journal = await DynamoDbExecutionJournal.open(client);
    return {
      store,
      journal,
      endpoint: running.endpoint,
      owner: false,
      runner: listenerProcess(running),
      close: async () => client.destroy(),
    };
  }
  // A listener serves the store from a thread of its own, beside the workflows it runs; a
  // short command (status, reset-db) is done before a thread would have started (about 0.5 s),
  // and a bundle (`serverless invoke local`) has no thread script.
  const serve =
    options.listen && storeThreadAvailable() ? startEmbeddedDynamoThread : startEmbeddedDynamo;
  const dynamo = await serve({ path: join(database, "dynamodb") });
  const client = createDynamoClient({ endpoint: dynamo.endpoint, credentials: dynamo.credentials });
  const store = await DynamoDbStore.open(client);
  const journal = await DynamoDbExecutionJournal.open(client);
  if (options.listen) {
    const me = thisProcess();
    const record: ListenerFile = {
      pid: me.pid,
      startTicks: me.startTicks,
      endpoint: dynamo.endpoint,
      startedAt: new Date().toISOString(),
      credentials: dynamo.credentials,
    };
    // Written whole or not at all (`laas stop` may read it at any moment), and 0600: it holds the
    // credential.
    await writeOwnerOnlyFile(listenerRecordPath(database), `${JSON.stringify(record)}\n`);
  }
  return {
    store,
    journal,
    endpoint: dynamo.endpoint,
    owner: true,
    runner: thisProcess(),
    close: async () => {
      client.destroy();
      await dynamo.close();
      if (options.listen) await rm(listenerRecordPath(database), { force: true });
    },
  };
}
