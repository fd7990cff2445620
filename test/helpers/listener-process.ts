/**
 * `laas listen` as a real process on a lab's config, as an operator starts it, and the test's
 * own view of that listener's store (its dynalite endpoint and credential, from listener.json):
 * for tests that kill it with SIGKILL or stop it with SIGTERM at an exact point and start another.
 */
import { join } from "node:path";
import { DynamoDbStore } from "../../lib/adapters/aws/dynamodb-store";
import { createDynamoClient, defaultTableNames } from "../../lib/adapters/aws/dynamodb-tables";
import { type ListenerFile, readListenerFile } from "../../lib/app/embedded-store";
import type { Booking } from "../../lib/domain/booking";
import type { Store } from "../../lib/ports/store";
import { repoRoot } from "../../sim/lab";
import { type ProcessResult, type RunningProcess, startProcess } from "./process";
import { waitFor } from "./wait";

const laasBin = join(repoRoot, "bin", "laas.mjs");
const childEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

export interface ListenerProcess {
  readonly process: RunningProcess;
  readonly pid: number;
  /** Its listener.json: endpoint and credential. */
  readonly record: ListenerFile;
  /** The listener's store, reached the way `laas status` reaches it. */
  readonly store: Store;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<ProcessResult>;
  /** SIGTERM (a drain, as `laas stop` asks), and wait for the process to exit. */
  stop(): Promise<ProcessResult>;
  /** Kills it synchronously, from inside a simulator's hook (at an exact point). */
  killNow(): void;
}

export interface ListenerStart {
  configPath: string;
  /** The store directory (pharos.yaml's `database`), where listener.json is. */
  database: string;
  drainSeconds?: number;
  extraArgs?: string[];
  /** Started with this umask (through /bin/sh), e.g. 0 to see that laas sets its own modes. */
  umask?: number;
}

/** Starts `laas listen` and resolves once it has published its store and is polling. */
export async function startListenerProcess(start: ListenerStart): Promise<ListenerProcess> {
  const argv = [
    process.execPath,
    laasBin,
    "listen",
    "--config",
    start.configPath,
    "--drain",
    String(start.drainSeconds ?? 1),
    // Its log's JSON lines on stdout, which the tests read (the plain lines are for people).
    "--json",
    ...(start.extraArgs ?? []),
  ];
  const [command, ...args] =
    start.umask === undefined
      ? argv
      : // exec: the pid is the listener's own, as it would be started directly.
        ["/bin/sh", "-c", `umask ${start.umask.toString(8)} && exec "$@"`, "sh", ...argv];
  const running = startProcess(command!, args, { cwd: repoRoot, env: childEnv });
  let exited = false;
  void running.exited.finally(() => {
    exited = true;
  });
  const record = await waitFor(
    `listener pid ${running.pid} to publish its store`,
    async () => {
      if (exited) {
        throw new Error(`the listener exited early:\n${running.stdout()}\n${running.stderr()}`);
      }
      const file = await readListenerFile(start.database).catch(() => null);
      return file?.pid === running.pid ? file : undefined;
    },
    30_000,
  );
  await waitFor("the listener to start", () =>
    running.stdout().includes('"listener started"') ? true : undefined,
  );
  const client = createDynamoClient({
    endpoint: record.endpoint,
    credentials: record.credentials,
  });
  const store = new DynamoDbStore(client, defaultTableNames);
  const ended = async () => {
    const result = await running.exited;
    client.destroy();
    return result;
  };
  return {
    process: running,
    pid: running.pid,
    record,
    store,
    killNow: () => {
      if (!exited) process.kill(running.pid, "SIGKILL");
    },
    kill: async () => {
      if (!exited) process.kill(running.pid, "SIGKILL");
      return ended();
    },
    stop: async () => {
      if (!exited) process.kill(running.pid, "SIGTERM");
      return ended();
    },
  };
}

/** Waits until the booking, as the listener's store has it, passes `test`. */
export function bookingUntil(
  listener: ListenerProcess,
  id: string,
  what: string,
  test: (booking: Booking) => boolean,
  timeoutMs = 60_000,
): Promise<Booking> {
  return waitFor(
    `booking ${id}: ${what}`,
    async () => {
      const booking = await listener.store.getBooking(id);
      if (booking?.state === "failed") {
        throw new Error(`booking ${id} failed: ${booking.failure}`);
      }
      return booking && test(booking) ? booking : undefined;
    },
    timeoutMs,
  );
}
