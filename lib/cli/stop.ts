/**
 * `laas stop`: SIGTERM to the store's listener, then wait until it has drained and exited. It
 * signals only a process it can prove is that listener: the pid listener.json names, started when
 * the listener did (not a later process given the same pid), and holding the store's endpoint (the
 * listening socket listener.json names). Anything else is refused, and nothing is signalled.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { holdsListeningSocket, isRunning, startTicksOf } from "../adapters/local/process-identity";
import { listenerProcess, listenerRecordPath, readListenerFile } from "../app/embedded-store";
import { errorMessage, LaasError } from "../errors";
import { loadAnyConfig } from "./config";
import { EXIT, Refusal } from "./exit";

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function stopCommand(
  options: { config: string; timeoutSeconds: number },
  out: (line: string) => void,
): Promise<number> {
  const { lab } = await loadAnyConfig(options.config);
  const path = listenerRecordPath(lab.database);
  const listener = await readListenerFile(lab.database);
  if (!listener) throw new Refusal(`no listener is running on ${lab.database} (no ${path})`);
  const { pid, endpoint } = listener;
  const stale = `${path} is stale (the next \`laas listen\` replaces it; you may remove it)`;
  if (!pidAlive(pid)) {
    throw new Refusal(`no listener is running on ${lab.database}: pid ${pid} is gone, so ${stale}`);
  }
  if (listener.startTicks === null || startTicksOf(pid) === null) {
    throw new Refusal(
      `cannot prove that pid ${pid} is the listener of ${lab.database}: its start time is not ` +
        "known here (no /proc); nothing was signalled — check the process, and stop it yourself",
    );
  }
  if (!isRunning(listenerProcess(listener))) {
    throw new Refusal(
      `no listener is running on ${lab.database}: pid ${pid} now belongs to a process that ` +
        `started after the listener did (the pid was reused), so ${stale}; nothing was signalled`,
    );
  }
  const port = Number(new URL(endpoint).port);
  let holds: boolean;
  try {
    holds = holdsListeningSocket(pid, port);
  } catch (error) {
    if (!(error instanceof LaasError)) throw error;
    throw new Refusal(
      `cannot prove that pid ${pid} is the listener of ${lab.database} (${errorMessage(error)}); ` +
        "nothing was signalled — run `laas stop` as the user the listener runs as",
    );
  }
  if (!holds) {
    throw new Refusal(
      `pid ${pid}, named by ${path}, is not the listener of ${lab.database}: it does not hold ` +
        `the store's endpoint ${endpoint}; nothing was signalled. If no \`laas listen\` runs on ` +
        "this store, remove the file",
    );
  }
  out(`stopping listener pid ${pid} (it drains its workflows, then hands the rest over)`);
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  while (isRunning(listenerProcess(listener))) {
    if (Date.now() > deadline) {
      out(`listener pid ${pid} still runs after ${options.timeoutSeconds} s`);
      return EXIT.failed;
    }
    await sleep(200);
  }
  out("listener stopped");
  return EXIT.ok;
}
