/**
 * The lab's operator during a chaos run: a host quarantined after its failure streak stays out of
 * service until someone releases it, so the operator does what the failure mail says — once the
 * fault that took the host out is over (its network boot works again) and the host has sat
 * quarantined a while, `laas host release NAME` as a process, as an operator runs it. What each
 * release answered is kept; one that fails is a finding of the run, not the end of it.
 */
import { join } from "node:path";
import type { Host } from "../../lib/domain/host";
import { repoRoot } from "../../sim/lab";
import { runProcess } from "../helpers/process";

export interface OperatorRelease {
  atMs: number;
  host: string;
  code: number | null;
  /** The command's last lines (stdout and stderr). */
  output: string;
  ms: number;
}

export interface Operator {
  readonly releases: OperatorRelease[];
  /** Releases in flight. */
  settled(): Promise<void>;
  tick(elapsedMs: number, hosts: readonly Host[]): void;
}

/** How long a host sits quarantined before the operator gets to it (ms). */
const REACTION_MS = 8_000;
const RELEASE_TIMEOUT_MS = 180_000;

export function operator(
  configPath: string,
  quarantineAfter: number,
  /** Whether a fault still keeps the host from working (its network boot is off). */
  stillBroken: (host: string) => boolean,
): Operator {
  const releases: OperatorRelease[] = [];
  const since = new Map<string, number>();
  const running = new Map<string, Promise<void>>();
  const laas = join(repoRoot, "bin", "laas.mjs");

  return {
    releases,
    async settled() {
      await Promise.allSettled(running.values());
    },
    tick(elapsedMs, hosts) {
      for (const host of hosts) {
        if (host.state !== "quarantined" || host.failures < quarantineAfter) {
          since.delete(host.name);
          continue;
        }
        const first = since.get(host.name) ?? elapsedMs;
        since.set(host.name, first);
        if (elapsedMs - first < REACTION_MS || running.has(host.name)) continue;
        if (stillBroken(host.name)) continue;
        const started = Date.now();
        const release = runProcess(
          process.execPath,
          [laas, "host", "release", host.name, "--config", configPath],
          { cwd: repoRoot, timeoutMs: RELEASE_TIMEOUT_MS },
        )
          .then(
            (result) => ({ code: result.code, output: `${result.stdout}\n${result.stderr}` }),
            (error: unknown) => ({ code: null, output: String(error) }),
          )
          .then(({ code, output }) => {
            releases.push({
              atMs: elapsedMs,
              host: host.name,
              code,
              output: output.trim().split("\n").slice(-4).join(" | "),
              ms: Date.now() - started,
            });
          })
          .finally(() => {
            running.delete(host.name);
            since.delete(host.name);
          });
        running.set(host.name, release);
      }
    },
  };
}
