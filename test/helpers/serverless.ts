/**
 * The real `serverless` command (osls) and `laas`, run as processes from the repository root
 * the way a developer runs them, with none of the test's own LaaS or AWS settings in their
 * environment.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../sim/lab";
import { type Finished, runCommand } from "./subprocess";

/** The environment of the commands: no LaaS or AWS settings of the test's own leak in. */
export function commandEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("LAAS_") || name.startsWith("AWS_")) delete env[name];
  }
  return { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...extra };
}

/**
 * Runs in seconds; a failed `invoke local` may hang instead of exiting, hence the limit. The
 * command gets a temporary directory of its own, removed afterwards: serverless-esbuild leaves a
 * copy of the package's files behind in it on every run.
 */
export async function serverless(
  args: string[],
  env: Record<string, string> = {},
): Promise<Finished> {
  const scratch = await mkdtemp(join(tmpdir(), "laas-sls-tmp-"));
  try {
    return await runCommand(join(repoRoot, "node_modules", ".bin", "serverless"), args, {
      cwd: repoRoot,
      env: commandEnv({ ...env, TMPDIR: scratch }),
      timeoutMs: 120_000,
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export function laas(args: string[]): Promise<Finished> {
  return runCommand(process.execPath, [join(repoRoot, "bin", "laas.mjs"), ...args], {
    cwd: repoRoot,
    env: commandEnv(),
    timeoutMs: 60_000,
  });
}

/**
 * The handler's return value, which serverless prints indented, from a line "{" to a line "}".
 * Log lines (one JSON object each) come before it and may still come after it.
 */
export function printedResult(stdout: string): unknown {
  const lines = stdout.split("\n");
  const start = lines.lastIndexOf("{");
  const end = lines.indexOf("}", start);
  try {
    if (start < 0 || end < 0) throw new Error("none found");
    return JSON.parse(lines.slice(start, end + 1).join("\n"));
  } catch (error) {
    throw new Error(`no printed result (${String(error)}) in:\n${stdout}`);
  }
}
