import { setTimeout as sleep } from "node:timers/promises";
import { isRunning } from "../adapters/local/process-identity";
import { listenerProcess, runningListener } from "../app/embedded-store";
import { loadAnyConfig } from "./config";
import { EXIT, Refusal } from "./exit";

export async function stopCommand(
  options: { config: string; timeoutSeconds: number },
  out: (line: string) => void,
): Promise<number> {
  const { lab } = await loadAnyConfig(options.config);
  const listener = await runningListener(lab.database);
  if (!listener) throw new Refusal(`no listener is running on ${lab.database}`);
  out(`stopping listener pid ${listener.pid} (it drains its workflows, then hands the rest over)`);
  process.kill(listener.pid, "SIGTERM");
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  while (isRunning(listenerProcess(listener))) {
    if (Date.now() > deadline) {
      out(`listener pid ${listener.pid} still runs after ${options.timeoutSeconds} s`);
      return EXIT.failed;
    }
    await sleep(200);
  }
  out("listener stopped");
  return EXIT.ok;
}
