/**
 * The embedded store served from a worker thread of its own. In one thread, the store's work
 * (checking each request's signature, dynalite, LevelDB) and the listener's (the poll, the local
 * engine, every step, the SDK's marshalling) take turns on one core; here they run side by side.
 * The thread is part of this process: it dies with it, and LevelDB's lock is still this process's.
 *
 * The thread runs TypeScript through tsx's scoped import (nothing registered process-wide), so it
 * works wherever this module does: the `laas` command, the test runner, the benchmarks.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { LaasError } from "../../errors";
import {
  type EmbeddedDynamo,
  type EmbeddedDynamoOptions,
  prepareStoreFolder,
  type StoreCredentials,
  StoreLockedError,
} from "./embedded-dynamodb";

/** What the main thread asks of the store's thread. */
export type ToStoreThread = { type: "close" };

/** What the store's thread answers. */
export type FromStoreThread =
  | { type: "ready"; endpoint: string; credentials: StoreCredentials }
  | { type: "failed"; name: string; message: string }
  | { type: "closed"; error?: string };

/** The store's thread stopped without being asked to: nothing would answer the store's clients. */
export class StoreThreadError extends LaasError {
  override name = "StoreThreadError";
}

const WORKER_ENTRY = new URL("./embedded-dynamodb-worker.ts", import.meta.url).href;

/**
 * Whether the thread's script is there to run: it is wherever the sources are (the `laas`
 * command, the tests), not in a bundle (`serverless invoke local` runs one), which then serves the
 * store in its own thread.
 */
export function storeThreadAvailable(): boolean {
  return existsSync(fileURLToPath(WORKER_ENTRY));
}

/** Loads tsx, then the worker's TypeScript entry through it. Runs as the thread's whole script. */
const BOOTSTRAP = `
const { workerData } = require("node:worker_threads");
import(workerData.tsx).then(({ tsImport }) => tsImport(workerData.entry, workerData.entry));
`;

function tsxApiUrl(): string {
  const resolved = createRequire(import.meta.url).resolve("tsx/esm/api");
  // The package's ESM build beside the CommonJS one `require.resolve` finds.
  return pathToFileURL(resolved.replace(/index\.cjs$/, "index.mjs")).href;
}

function failure(message: Extract<FromStoreThread, { type: "failed" }>): Error {
  return message.name === new StoreLockedError("").name
    ? new StoreLockedError(message.message)
    : new LaasError(message.message);
}

export interface StoreThreadOptions {
  /**
   * Called when the thread stops without close() (it crashed). By default that is thrown, so the
   * process ends as it would if the store had crashed in its own thread: a restart is the way back.
   */
  onUnexpectedExit?: (error: StoreThreadError) => void;
  /** The thread's script: the store's worker unless given (a test gives one that crashes). */
  entry?: string;
}

export async function startEmbeddedDynamoThread(
  options: EmbeddedDynamoOptions,
  threadOptions: StoreThreadOptions = {},
): Promise<EmbeddedDynamo> {
  const releaseUmask = await prepareStoreFolder(options.path);
  const entry = threadOptions.entry ?? WORKER_ENTRY;
  const worker = new Worker(BOOTSTRAP, {
    eval: true,
    workerData: { options, entry, tsx: tsxApiUrl() },
  });
  let closing: Promise<void> | undefined;
  let exited = false;
  worker.once("exit", () => {
    exited = true;
  });
  const onUnexpectedExit =
    threadOptions.onUnexpectedExit ??
    ((error: StoreThreadError) => {
      throw error;
    });
  try {
    const ready = await new Promise<Extract<FromStoreThread, { type: "ready" }>>(
      (resolve, reject) => {
        const onExit = (code: number): void =>
          reject(new StoreThreadError(`the store's thread exited (code ${code}) before it served`));
        worker.once("error", reject);
        worker.once("exit", onExit);
        worker.once("message", (message: FromStoreThread) => {
          worker.off("error", reject);
          worker.off("exit", onExit);
          if (message.type === "ready") resolve(message);
          else if (message.type === "failed") reject(failure(message));
          else reject(new StoreThreadError(`the store's thread answered ${message.type} first`));
        });
      },
    );
    worker.on("error", (error) => {
      if (closing === undefined) {
        onUnexpectedExit(new StoreThreadError(`the store's thread failed: ${error.message}`));
      }
    });
    worker.on("exit", (code) => {
      if (closing === undefined) {
        onUnexpectedExit(new StoreThreadError(`the store's thread exited (code ${code})`));
      }
    });
    return {
      endpoint: ready.endpoint,
      credentials: ready.credentials,
      close() {
        closing ??= new Promise<void>((resolve, reject) => {
          if (exited) {
            resolve();
            return;
          }
          let error: string | undefined;
          worker.on("message", (message: FromStoreThread) => {
            if (message.type === "closed") error = message.error;
          });
          worker.once("exit", () =>
            error === undefined ? resolve() : reject(new LaasError(error)),
          );
          const request: ToStoreThread = { type: "close" };
          worker.postMessage(request);
        }).finally(releaseUmask);
        return closing;
      },
    };
  } catch (error) {
    await worker.terminate();
    releaseUmask();
    throw error;
  }
}
