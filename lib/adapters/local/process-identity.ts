/**
 * Which process owns an execution, told apart from a later process that was given the same pid:
 * the pid with the process's start time (Linux's /proc/<pid>/stat field 22, in clock ticks since
 * boot). Where /proc is not there the pid alone is used.
 *
 * Also whether a process holds a given listening TCP port (its open files, /proc/<pid>/fd, against
 * /proc/net/tcp): what proves to `laas stop` that a pid is the store's listener.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { errorMessage, LaasError } from "../../errors";

export interface ProcessId {
  pid: number;
  /** Start time in clock ticks since boot, or null where it cannot be read. */
  startTicks: number | null;
}

/** The process's start time, or null when it is gone or /proc cannot tell. */
export function startTicksOf(pid: number): number | null {
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

/** /proc/net/tcp's state of a listening socket. */
const TCP_LISTEN = "0A";

/** Inodes of the sockets listening on TCP `port` (any address, IPv4 or IPv6). */
function listeningSocketInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue; // no IPv6, say
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local === undefined || fields[3] !== TCP_LISTEN || fields[9] === undefined) continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) {
        inodes.add(fields[9]);
      }
    }
  }
  return inodes;
}

/**
 * Whether process `pid` holds a socket listening on TCP `port` (on this network namespace). Throws
 * a LaasError saying why when that cannot be told: no /proc, or the process's open files may not
 * be looked at by this user.
 */
export function holdsListeningSocket(pid: number, port: number): boolean {
  const inodes = listeningSocketInodes(port);
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false; // it is gone
    throw new LaasError(`cannot look at the open files of pid ${pid}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const socket = /^socket:\[(\d+)\]$/.exec(target);
    if (socket && inodes.has(socket[1]!)) return true;
  }
  return false;
}
