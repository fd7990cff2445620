/**
 * The real `serverless` command (osls) and `laas`, run as processes the way a developer runs
 * them, with none of the test's own LaaS or AWS settings in their environment.
 *
 * `serverless` builds into its service directory (.esbuild/, emptied at the start of every build),
 * so two runs in one directory at once would spoil each other's build: each test file runs it in
 * a copy of the service of its own (serviceCopy).
 */
import { cp, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { repoRoot } from "../../sim/lab";
import { type Finished, runCommand } from "../../sim/subprocess";

/** The environment of the commands: no LaaS or AWS settings of the test's own leak in. */
export function commandEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("LAAS_") || name.startsWith("AWS_")) delete env[name];
  }
  return { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...extra };
}

/** What a copy of the service leaves out: what git ignores and the build's leftovers. */
const NOT_COPIED = new Set([".git", "node_modules", "var", ".esbuild", ".serverless", "coverage"]);

export interface ServiceCopy {
  dir: string;
  remove(): Promise<void>;
}

/**
 * The working tree as it is, in a temporary directory of its own, with the repository's
 * node_modules linked in: a service directory to run `serverless` (and the README's commands)
 * in, beside other tests doing the same.
 */
export async function serviceCopy(): Promise<ServiceCopy> {
  const dir = await mkdtemp(join(tmpdir(), "laas-service-"));
  await cp(repoRoot, dir, {
    recursive: true,
    filter: (source) => {
      const top = relative(repoRoot, source).split(sep)[0] ?? "";
      return !NOT_COPIED.has(top);
    },
  });
  await symlink(join(repoRoot, "node_modules"), join(dir, "node_modules"), "dir");
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Runs in seconds; a failed `invoke local` may hang instead of exiting, hence the limit. The
 * command gets a temporary directory of its own, removed afterwards: serverless-esbuild leaves a
 * copy of the package's files behind in it on every run.
 */
export async function serverless(
  serviceDir: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Finished> {
  const scratch = await mkdtemp(join(tmpdir(), "laas-sls-tmp-"));
  try {
    return await runCommand(join(serviceDir, "node_modules", ".bin", "serverless"), args, {
      cwd: serviceDir,
      env: commandEnv({ ...env, TMPDIR: scratch }),
      timeoutMs: 240_000,
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
