import { randomUUID } from "node:crypto";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDbStore } from "../../lib/adapters/aws/dynamodb-store";
import {
  createDynamoClient,
  ensureTables,
  type TableNames,
} from "../../lib/adapters/aws/dynamodb-tables";
import {
  type StoreCredentials,
  startEmbeddedDynamo,
} from "../../lib/adapters/local/embedded-dynamodb";

export interface TestStore {
  store: DynamoDbStore;
  client: DynamoDBClient;
  tables: TableNames;
  endpoint: string;
  /** What the store accepts requests signed with. */
  credentials: StoreCredentials;
  /** Another store over the same tables with its own client, as a second process would have. */
  openStore(): DynamoDbStore;
  close(): Promise<void>;
}

/** Table names unique to one test, so tests can share a dynalite or run in parallel. */
export function uniqueTableNames(): TableNames {
  const suffix = randomUUID().slice(0, 8);
  return {
    hosts: `test-hosts-${suffix}`,
    bookings: `test-bookings-${suffix}`,
    vpnPeople: `test-vpn-people-${suffix}`,
    jobs: `test-jobs-${suffix}`,
  };
}

/** An in-memory dynalite on 127.0.0.1 (random port) with freshly created tables. */
export async function startTestStore(): Promise<TestStore> {
  const dynamo = await startEmbeddedDynamo({ path: null });
  const clients: DynamoDBClient[] = [];
  const newClient = (): DynamoDBClient => {
    const created = createDynamoClient({
      endpoint: dynamo.endpoint,
      credentials: dynamo.credentials,
    });
    clients.push(created);
    return created;
  };
  try {
    const client = newClient();
    const tables = uniqueTableNames();
    await ensureTables(client, tables);
    return {
      store: new DynamoDbStore(client, tables),
      client,
      tables,
      endpoint: dynamo.endpoint,
      credentials: dynamo.credentials,
      openStore: () => new DynamoDbStore(newClient(), tables),
      async close() {
        for (const each of clients) each.destroy();
        await dynamo.close();
      },
    };
  } catch (error) {
    for (const each of clients) each.destroy();
    await dynamo.close();
    throw error;
  }
}
