/** The cloud composition: DynamoDB tables and Step Functions state machines named by the environment. */
import { DynamoDbStore } from "../adapters/aws/dynamodb-store";
import { createDynamoClient, tableNamesFromEnv } from "../adapters/aws/dynamodb-tables";
import { StepFunctionsEngine } from "../adapters/aws/sfn-engine";
import { loadPharosConfig } from "../config/load";
import { createLogger } from "../log";
import { buildRuntime } from "./build";
import type { Runtime } from "./runtime";

export async function openCloudRuntime(configPath: string, functionArn?: string): Promise<Runtime> {
  const config = await loadPharosConfig(configPath);
  const logger = createLogger();
  const store = new DynamoDbStore(createDynamoClient({}), tableNamesFromEnv(process.env));
  const engine = StepFunctionsEngine.fromEnv(process.env, functionArn);
  return buildRuntime({ config, store, engine, logger });
}
