/**
 * The listener of a chaos run: `laas listen` as a real process, SIGKILLed when the plan says and
 * started again after a pause. Keeps what every process printed (stdout and stderr), and notes a
 * listener that exited without being killed — that is a finding, and it is started again so the
 * run goes on.
 */
import type { Store } from "../../lib/ports/store";
import { type ListenerProcess, startListenerProcess } from "../helpers/listener-process";

export interface ListenerOutput {
  pid: number;
  stdout: string;
  stderr: string;
  /** How it ended: "SIGKILL" (the plan), "stopped" (end of run), or what it exited with. */
  ended: string;
}

export interface Listeners {
  /** The store of the listener running now, or null between processes. */
  store(): Store | null;
  current(): ListenerProcess | null;
  /** SIGKILL now; a new one starts after `downMs`. Resolves once it has started. */
  killAndRestart(downMs: number): Promise<void>;
  /** Listeners that exited on their own (not killed, not stopped). */
  readonly unexpectedExits: ListenerOutput[];
  readonly kills: number;
  /** Each listener's store credential (its secret key): a secret like any other. */
  readonly storeSecrets: string[];
  /** Everything every listener printed, oldest first (the one running now included). */
  outputs(): ListenerOutput[];
  /** SIGTERM (a drain) and wait. */
  stop(): Promise<void>;
}

export async function startListeners(configPath: string, database: string): Promise<Listeners> {
  const finished: ListenerOutput[] = [];
  const unexpectedExits: ListenerOutput[] = [];
  const storeSecrets: string[] = [];
  let current: ListenerProcess | null = null;
  /** Pids the run itself ended (killed or stopped). */
  const ended = new Set<number>();
  let kills = 0;
  let stopping = false;
  let restarting: Promise<void> | null = null;

  const start = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const started = await startListenerProcess({ configPath, database, drainSeconds: 2 });
        current = started;
        storeSecrets.push(started.record.credentials.secretAccessKey);
        void started.process.exited.then((result) => {
          const expected = ended.has(started.pid);
          const output: ListenerOutput = {
            pid: started.pid,
            stdout: result.stdout,
            stderr: result.stderr,
            ended: expected
              ? result.signal === "SIGKILL"
                ? "SIGKILL"
                : "stopped"
              : `exited ${result.code ?? result.signal}`,
          };
          finished.push(output);
          if (current === started) current = null;
          if (!expected && !stopping) {
            unexpectedExits.push(output);
            restarting ??= start().finally(() => {
              restarting = null;
            });
          }
        });
        return;
      } catch (error) {
        // A start can fail while the previous process's store is being let go: try again.
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
  };
  await start();

  return {
    store: () => current?.store ?? null,
    current: () => current,
    get kills() {
      return kills;
    },
    unexpectedExits,
    storeSecrets,
    async killAndRestart(downMs) {
      await restarting;
      const running = current;
      if (!running || stopping) return;
      ended.add(running.pid);
      kills += 1;
      current = null;
      await running.kill();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      if (!stopping) await start();
    },
    outputs() {
      const all = [...finished];
      const running = current as ListenerProcess | null;
      if (running) {
        all.push({
          pid: running.pid,
          stdout: running.process.stdout(),
          stderr: running.process.stderr(),
          ended: "running",
        });
      }
      return all;
    },
    async stop() {
      stopping = true;
      await restarting;
      const running = current as ListenerProcess | null;
      if (!running) return;
      ended.add(running.pid);
      await running.stop();
    },
  };
}
