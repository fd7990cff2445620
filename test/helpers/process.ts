import { type ChildProcess, spawn } from "node:child_process";

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessResult extends ProcessExit {
  stdout: string;
  stderr: string;
}

/** A child process whose output is collected as it comes. */
export interface RunningProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited and its output streams are closed. */
  readonly exited: Promise<ProcessResult>;
  /** Kills the process if it still runs (cleanup after a failed test). */
  kill(): void;
}

export interface StartOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

export function startProcess(
  command: string,
  args: readonly string[],
  options: StartOptions,
): RunningProcess {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  // "close" (not "exit") so that everything the process wrote has been read.
  const exited = new Promise<ProcessResult>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return {
    child,
    pid: child.pid,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** Runs a process to its end; one that outlives `timeoutMs` is killed and reported. */
export async function runProcess(
  command: string,
  args: readonly string[],
  options: StartOptions & { timeoutMs: number },
): Promise<ProcessResult> {
  const running = startProcess(command, args, options);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      running.kill();
      reject(
        new Error(
          `${[command, ...args].join(" ")} still ran after ${options.timeoutMs} ms\n` +
            `stdout: ${running.stdout()}\nstderr: ${running.stderr()}`,
        ),
      );
    }, options.timeoutMs);
  });
  try {
    return await Promise.race([running.exited, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
