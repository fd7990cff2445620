/**
 * The embedded store's own thread (started by embedded-dynamodb-thread.ts): serves dynalite here,
 * says where, and closes it when asked. Everything the store does — the guard's signature checks,
 * dynalite's request handling, LevelDB — then runs beside the listener's thread rather than in
 * it, on a machine with a second core.
 */
import { parentPort, workerData } from "node:worker_threads";
import { errorMessage } from "../../errors";
import { type EmbeddedDynamoOptions, serveDynalite } from "./embedded-dynamodb";
import type { FromStoreThread, ToStoreThread } from "./embedded-dynamodb-thread";

const port = parentPort;
if (port === null) throw new Error("embedded-dynamodb-worker.ts runs only as a worker thread");

const options = (workerData as { options: EmbeddedDynamoOptions }).options;
const tell = (message: FromStoreThread): void => port.postMessage(message);

try {
  const served = await serveDynalite(options);
  port.on("message", (message: ToStoreThread) => {
    if (message.type !== "close") return;
    served
      .close()
      .then(() => tell({ type: "closed" }))
      .catch((error: unknown) => tell({ type: "closed", error: errorMessage(error) }))
      .finally(() => port.close());
  });
  tell({ type: "ready", endpoint: served.endpoint, credentials: served.credentials });
} catch (error) {
  tell({
    type: "failed",
    name: error instanceof Error ? error.name : "Error",
    message: errorMessage(error),
  });
  port.close();
}
