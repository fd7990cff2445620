/**
 * The `laas` command as the tests run it: `node bin/laas.mjs ARGS…` from the project root, with
 * the SDK's Node-version notice off (it would land in every stderr the tests read).
 */
import { join } from "node:path";
import { repoRoot } from "../../sim/lab";
import { type RunningProcess, runProcess, startProcess } from "./process";

export const laasBin = join(repoRoot, "bin", "laas.mjs");
export const childEnv = {
  ...process.env,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};

/** `laas ARGS…` run to its end (a minute at most). */
export function laas(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runProcess(process.execPath, [laasBin, ...args], {
    cwd: repoRoot,
    env: { ...childEnv, ...env },
    timeoutMs: 60_000,
  });
}

/** `laas ARGS…` left running, its output collected as it comes. */
export function laasRunning(args: string[], env: NodeJS.ProcessEnv = {}): RunningProcess {
  return startProcess(process.execPath, [laasBin, ...args], {
    cwd: repoRoot,
    env: { ...childEnv, ...env },
  });
}
