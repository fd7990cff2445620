/**
 * What a chaos run leaves to be judged, collected once the lab has settled: the store (read as
 * LaaS reads it, and dumped raw, every table), what the simulators and real servers hold (FOG's
 * tasks, the hosts' libvirt state, slapd's entries, the mail received, the dashboard's notes),
 * and everything the listeners wrote (their log file, stdout and stderr).
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { ListTablesCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { createDynamoClient } from "../../lib/adapters/aws/dynamodb-tables";
import type { Booking } from "../../lib/domain/booking";
import type { Host } from "../../lib/domain/host";
import type { StatusNote } from "../../sim/dashboard-sim";
import type { FogSimTask } from "../../sim/fog-sim";
import type { CapturedMail } from "../../sim/smtp";
import type { ChaosLab } from "./chaos-lab";
import type { ListenerOutput, Listeners } from "./listeners";

export interface VpnEntry {
  dn: string;
  uid: string;
  description: string;
}

export interface HostLeftover {
  host: string;
  networks: string[];
  domains: string[];
}

export interface Evidence {
  bookings: Booking[];
  hosts: Host[];
  /** Every item of every table, as JSON lines (table name first). */
  storeDump: string[];
  fogTasks: FogSimTask[];
  hostLeftovers: HostLeftover[];
  /** Entries LaaS marks as its own (description "laas-managed …") under the users' OU. */
  vpnEntries: VpnEntry[];
  mails: CapturedMail[];
  statusNotes: StatusNote[];
  /** The listeners' log file(s), line by line, with the file name. */
  logFiles: { file: string; lines: string[] }[];
  outputs: ListenerOutput[];
}

/** Whether FOG's task state is an active one (queued, checked in, in progress). */
export function activeFogTask(task: FogSimTask): boolean {
  return task.stateId >= 0 && task.stateId <= 3;
}

export async function collectStore(
  listeners: Listeners,
): Promise<Pick<Evidence, "bookings" | "hosts" | "storeDump">> {
  const running = listeners.current();
  if (!running) throw new Error("no listener is running to read the store through");
  const bookings = await running.store.listBookings();
  const hosts = await running.store.listHosts();
  const client = createDynamoClient({
    endpoint: running.record.endpoint,
    credentials: running.record.credentials,
  });
  const storeDump: string[] = [];
  try {
    const { TableNames = [] } = await client.send(new ListTablesCommand({}));
    for (const table of TableNames) {
      let start: Record<string, unknown> | undefined;
      do {
        const page = await client.send(
          new ScanCommand({
            TableName: table,
            ...(start ? { ExclusiveStartKey: start as never } : {}),
          }),
        );
        for (const item of page.Items ?? []) storeDump.push(`${table} ${JSON.stringify(item)}`);
        start = page.LastEvaluatedKey;
      } while (start);
    }
  } finally {
    client.destroy();
  }
  return { bookings, hosts, storeDump };
}

export async function collectVpnEntries(chaos: ChaosLab): Promise<VpnEntry[]> {
  const admin = await chaos.slapd.adminClient();
  try {
    const { searchEntries } = await admin.search(chaos.slapd.usersBase, {
      scope: "one",
      filter: "(description=laas-managed*)",
      attributes: ["uid", "description"],
    });
    return searchEntries.map((entry) => ({
      dn: entry.dn,
      uid: String(entry.uid),
      description: String(entry.description),
    }));
  } finally {
    await admin.unbind();
  }
}

export function collectLabState(
  chaos: ChaosLab,
): Pick<Evidence, "fogTasks" | "hostLeftovers" | "mails" | "statusNotes"> {
  const { lab } = chaos;
  return {
    fogTasks: lab.fog.tasks(),
    hostLeftovers: lab.inventory
      .map((host) => {
        const shell = lab.hosts.shell(host.name);
        return {
          host: host.name,
          networks: [...shell.networks.keys()],
          domains: [...shell.domains.keys()],
        };
      })
      .filter((l) => l.networks.length > 0 || l.domains.length > 0),
    mails: [...chaos.smtp.messages],
    statusNotes: [...lab.dashboard.statusNotes],
  };
}

export async function collectLogs(chaos: ChaosLab): Promise<Evidence["logFiles"]> {
  const dir = join(chaos.workDir, "log");
  const files = await readdir(dir).catch(() => [] as string[]);
  const logs: Evidence["logFiles"] = [];
  for (const file of files.sort()) {
    const text = await readFile(join(dir, file), "utf8").catch(() => "");
    logs.push({ file, lines: text.split("\n").filter((l) => l !== "") });
  }
  return logs;
}

/** The JSON log lines of every listener's stdout, parsed where they parse. */
export function logRecords(outputs: readonly ListenerOutput[]): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = [];
  for (const output of outputs) {
    for (const line of output.stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        records.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by a SIGKILL
      }
    }
  }
  return records;
}
