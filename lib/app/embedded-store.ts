/**
 * The embedded default's store: the same DynamoDB adapter the cloud uses, against dynalite running
 * in-process and persisted under the configured `database` directory.
 *
 * LevelDB admits one process per directory. The listener owns it and publishes its endpoint (and
 * pid, for `laas stop`) in `listener.json`; other commands (`laas status`, `reset-db`, `deploy`)
 * talk to that endpoint while a listener runs, and open the directory themselves otherwise.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DynamoDbExecutionJournal } from "../adapters/aws/dynamodb-journal";
import { DynamoDbStore } from "../adapters/aws/dynamodb-store";
import { createDynamoClient } from "../adapters/aws/dynamodb-tables";
import { StoreLockedError, startEmbeddedDynamo } from "../adapters/local/embedded-dynamodb";
import type { ExecutionJournal } from "../adapters/local/journal";
import { isRunning, type ProcessId, thisProcess } from "../adapters/local/process-identity";
import type { Store } from "../ports/store";

export interface ListenerRecord {
  pid: number;
  /** The listener process's start time (see process-identity.ts), null where unknown. */
  startTicks: number | null;
  endpoint: string;
  startedAt: string;
}

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

/** The running listener's record, or null if none runs (a stale record is ignored). */
export async function runningListener(database: string): Promise<ListenerRecord | null> {
  let record: ListenerRecord;
  try {
    record = JSON.parse(await readFile(listenerRecordPath(database), "utf8")) as ListenerRecord;
  } catch {
    return null;
  }
  return isRunning(listenerProcess(record)) ? record : null;
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
  await mkdir(database, { recursive: true });
  const running = await runningListener(database);
  if (running && running.pid !== process.pid) {
    if (options.listen) {
      throw new StoreLockedError(
        `a listener already runs on ${database} (pid ${running.pid}); stop it with \`laas stop\``,
      );
    }
    const client = createDynamoClient({ endpoint: running.endpoint });
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
  const dynamo = await startEmbeddedDynamo({ path: join(database, "dynamodb") });
  const client = createDynamoClient({ endpoint: dynamo.endpoint });
  const store = await DynamoDbStore.open(client);
  const journal = await DynamoDbExecutionJournal.open(client);
  if (options.listen) {
    const me = thisProcess();
    const record: ListenerRecord = {
      pid: me.pid,
      startTicks: me.startTicks,
      endpoint: dynamo.endpoint,
      startedAt: new Date().toISOString(),
    };
    // Written whole or not at all: `laas stop` may read it at any moment.
    const partial = `${listenerRecordPath(database)}.${process.pid}.tmp`;
    await writeFile(partial, `${JSON.stringify(record)}\n`);
    await rename(partial, listenerRecordPath(database));
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
