/**
 * Which process owns an execution, told apart from a later process that was given the same pid:
 * the pid with the process's start time (Linux's /proc/<pid>/stat field 22, in clock ticks since
 * boot). Where /proc is not there the pid alone is used.
 */
import { readFileSync } from "node:fs";

export interface ProcessId {
  pid: number;
  /** Start time in clock ticks since boot, or null where it cannot be read. */
  startTicks: number | null;
}

function startTicksOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    return Number.isSafeInteger(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

let self: ProcessId | null = null;

export function thisProcess(): ProcessId {
  self ??= { pid: process.pid, startTicks: startTicksOf(process.pid) };
  return self;
}

export function sameProcess(a: ProcessId, b: ProcessId): boolean {
  return a.pid === b.pid && a.startTicks === b.startTicks;
}

/** Whether the process still runs (a signal-0 probe, then its start time where known). */
export function isRunning(id: ProcessId): boolean {
  try {
    process.kill(id.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (id.startTicks === null) return true;
  return startTicksOf(id.pid) === id.startTicks;
}
