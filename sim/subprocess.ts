import { execFile } from "node:child_process";

export interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to its end without blocking the event loop (the simulators a test runs in its
 * own process must keep answering), and reports its exit code instead of throwing on failure.
 */
export function runCommand(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") {
          // Killed (time out) or never started: say so with what it printed until then.
          const ran = { code: -1, stdout, stderr };
          reject(
            new Error(`${error.message} (${error.signal ?? error.code})\n${describeRun(ran)}`),
          );
          return;
        }
        resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
      },
    );
    // An open stdin is input to wait for (`serverless invoke local` reads its event from it).
    child.stdin?.end();
  });
}

/** `result` as text for assertion messages. */
export function describeRun(result: Finished): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}
