import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type KeySchemaElement,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";

/**
 * The four tables LaaS keeps, defined once. In the cloud serverless.yml declares them and must
 * mirror these key schemas exactly:
 *   hosts table:       partition key `name` (S), no sort key, PAY_PER_REQUEST
 *   bookings table:    partition key `id`   (S), no sort key, PAY_PER_REQUEST
 *   vpn-people table:  partition key `key`  (S), no sort key, PAY_PER_REQUEST
 *   jobs table:        partition key `key`  (S), no sort key, PAY_PER_REQUEST
 * No secondary indexes, no TTL and no streams here: the embedded dynalite supports none of them
 * (in the cloud the bookings and jobs tables have DynamoDB TTL on `expiresAtEpochSeconds`, which
 * the sweep applies too).
 */
export interface TableNames {
  hosts: string;
  bookings: string;
  /** One record per person holding a VPN account (domain/vpn-person.ts). */
  vpnPeople: string;
  /** One record per job of the later dashboard's jobs API (domain/job.ts). */
  jobs: string;
}

export const defaultTableNames: TableNames = {
  hosts: "laas-hosts",
  bookings: "laas-bookings",
  vpnPeople: "laas-vpn-people",
  jobs: "laas-jobs",
};

/** Partition key attribute of each table (the only key attribute). */
export const tableKeys = {
  hosts: "name",
  bookings: "id",
  vpnPeople: "key",
  jobs: "key",
} as const satisfies Record<keyof TableNames, string>;

export interface TableDefinition {
  keySchema: KeySchemaElement[];
  attributeDefinitions: AttributeDefinition[];
}

export function partitionKeyOnly(attribute: string): TableDefinition {
  return {
    keySchema: [{ AttributeName: attribute, KeyType: "HASH" }],
    attributeDefinitions: [{ AttributeName: attribute, AttributeType: "S" }],
  };
}

export const tableDefinitions: Record<keyof TableNames, TableDefinition> = {
  hosts: partitionKeyOnly(tableKeys.hosts),
  bookings: partitionKeyOnly(tableKeys.bookings),
  vpnPeople: partitionKeyOnly(tableKeys.vpnPeople),
  jobs: partitionKeyOnly(tableKeys.jobs),
};

export function tableNamesFromEnv(env: NodeJS.ProcessEnv = process.env): TableNames {
  return {
    hosts: env.LAAS_HOSTS_TABLE || defaultTableNames.hosts,
    bookings: env.LAAS_BOOKINGS_TABLE || defaultTableNames.bookings,
    vpnPeople: env.LAAS_VPN_PEOPLE_TABLE || defaultTableNames.vpnPeople,
    jobs: env.LAAS_JOBS_TABLE || defaultTableNames.jobs,
  };
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

async function tableExists(client: DynamoDBClient, tableName: string): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return true;
  } catch (error) {
    if (errorName(error) === "ResourceNotFoundException") return false;
    throw error;
  }
}

export async function ensureTable(
  client: DynamoDBClient,
  tableName: string,
  definition: TableDefinition,
): Promise<void> {
  if (!(await tableExists(client, tableName))) {
    try {
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          KeySchema: definition.keySchema,
          AttributeDefinitions: definition.attributeDefinitions,
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
    } catch (error) {
      // Another process created it between our describe and create: that is what we wanted.
      if (errorName(error) !== "ResourceInUseException") throw error;
    }
  }
  // A new table is CREATING for a while (dynalite: createTableMs; DynamoDB: seconds).
  await waitUntilTableExists(
    { client, minDelay: 0.05, maxDelay: 2, maxWaitTime: 120 },
    { TableName: tableName },
  );
}

/**
 * Creates whichever of the tables is missing and waits until all are ACTIVE. Used by the
 * embedded default and the tests; in the cloud the tables come from serverless.yml.
 */
export async function ensureTables(client: DynamoDBClient, names: TableNames): Promise<void> {
  await Promise.all([
    ensureTable(client, names.hosts, tableDefinitions.hosts),
    ensureTable(client, names.bookings, tableDefinitions.bookings),
    ensureTable(client, names.vpnPeople, tableDefinitions.vpnPeople),
    ensureTable(client, names.jobs, tableDefinitions.jobs),
  ]);
}

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

function isLoopbackEndpoint(endpoint: string): boolean {
  try {
    const host = new URL(endpoint).hostname;
    return LOOPBACK_HOSTS.has(host) || host.startsWith("127.");
  } catch {
    return false;
  }
}

export interface DynamoClientOptions {
  /** Explicit endpoint, e.g. the embedded dynalite's http://127.0.0.1:PORT. */
  endpoint?: string;
  region?: string;
  /** Static credentials, e.g. the embedded store's own (it refuses requests signed otherwise). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * A DynamoDB client. Without an explicit endpoint the SDK itself honours AWS_ENDPOINT_URL_DYNAMODB
 * and AWS_ENDPOINT_URL (LocalStack), so those are not re-read into the config here; they are only
 * looked at to tell whether the endpoint is on this machine. A loopback endpoint (dynalite,
 * LocalStack) gets dummy static credentials, unless given its own (the embedded store's), and a
 * default region, so that no credential chain lookup (files, instance metadata) happens.
 */
export function createDynamoClient(
  options: DynamoClientOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): DynamoDBClient {
  const endpoint = options.endpoint ?? env.AWS_ENDPOINT_URL_DYNAMODB ?? env.AWS_ENDPOINT_URL;
  const local = endpoint !== undefined && isLoopbackEndpoint(endpoint);
  const region = options.region ?? (local ? "us-east-1" : undefined);
  return new DynamoDBClient({
    // Each command's middleware is resolved once, not on every request (its share of a burst's
    // CPU was large); nothing here changes a client's middleware after its first request.
    cacheMiddleware: true,
    // Left out rather than set to undefined, so the SDK's own env/config resolution still runs.
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(region !== undefined ? { region } : {}),
    ...(options.credentials !== undefined
      ? { credentials: options.credentials }
      : local
        ? { credentials: { accessKeyId: "local", secretAccessKey: "local" } }
        : {}),
  });
}
