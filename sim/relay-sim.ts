/**
 * The lab-side relay, simulated: an SSH server on 127.0.0.1 with its own ed25519 host key, that
 * lets one user in with one key, runs the commands the product runs on the relay (`true`, the
 * lease lookup grep over the DHCP server's file — a system log or dnsmasq's lease file, held in
 * memory — and `ip -j neigh show to <address>`), and forwards connections (direct-tcpip, as
 * `ssh -J` or ssh2's forwardOut ask) to the simulated hosts on loopback.
 *
 * Its neighbour table is learned as a kernel's is: a forwarded connection that reached a machine
 * leaves an entry mapping the address to that machine's MAC (`macAt`, the simulated wire); an
 * address nothing answered at has none.
 *
 * Like an OpenSSH relay, it hands the exec'd line to a shell: here the line is read back into an
 * argv only when every word is single-quoted as the product quotes it; any other line is a
 * command the relay does not have (exit 127).
 */
import { connect, isIPv4, createServer as netServer, type Server, type Socket } from "node:net";
import type { Connection, ServerChannel, Server as SshServer } from "ssh2";
import ssh2 from "ssh2";
import { generateHostKey, publicKeyAuthenticator } from "./bare-metal";
import { commandNotFound, grep, parseQuotedCommand, type ShellResult } from "./host-shell";

export interface RelaySimOptions {
  /** The only user allowed in. */
  user: string;
  /** The only key allowed in: an OpenSSH public key line. */
  authorizedKey: string;
  /** Where the DHCP server's file is on the relay (the installer configs' dhcp_log). */
  dhcpLogPath: string;
  /**
   * What that file is: a system log (appendDhcpLog adds lines) or dnsmasq's lease file
   * (setLease rewrites it whole, in no time order, as dnsmasq does). Default: syslog.
   */
  dhcpFormat?: "syslog" | "dnsmasq-leases";
  /** The MAC of the machine answering at an address on the lab network, or null for none. */
  macAt?: (address: string) => string | null;
  /** Port on 127.0.0.1 (default 0: any free one). */
  port?: number;
}

export interface RelayCommandRecord {
  /** The argv read back from the line, or null when the line was not quoted word by word. */
  argv: string[] | null;
  /** The line as received. */
  line: string;
  exitCode: number;
}

export interface RelayForwardRecord {
  destIP: string;
  destPort: number;
  /** False when the relay refused to forward there (outside loopback) or could not connect. */
  connected: boolean;
}

export interface RelaySim {
  readonly port: number;
  readonly address: string;
  /** SHA256:… as `ssh-keygen -lf` prints it: what pharos.yaml pins as relay.host_key. */
  readonly hostKeyFingerprint: string;
  readonly dhcpLogPath: string;
  /** Appends one line to the DHCP log (syslog format). */
  appendDhcpLog(line: string): void;
  /** dnsmasq's lease for a MAC, replacing the one it had (dnsmasq-leases format). */
  setLease(lease: { mac: string; address: string; hostName: string; expiresAt: Date }): void;
  /** The relay's neighbour table: address → MAC, as learned from connections. */
  readonly neighbours: Map<string, string>;
  /** The DHCP log as it stands. */
  dhcpLog(): string;
  /** Every command run on the relay, oldest first. */
  readonly commands: RelayCommandRecord[];
  /** Every forwarding asked for, oldest first. */
  readonly forwards: RelayForwardRecord[];
  close(): Promise<void>;
}

/** dnsmasq's syslog lines for one lease, as a host's boot-time DHCP exchange leaves them. */
export function dnsmasqLeaseLines(lease: {
  at: Date;
  address: string;
  mac: string;
  hostName: string;
  iface?: string;
}): string[] {
  const iface = lease.iface ?? "eth0";
  const prefix = `${syslogTimestamp(lease.at)} lab dnsmasq-dhcp[321]:`;
  return [
    `${prefix} DHCPDISCOVER(${iface}) ${lease.mac}`,
    `${prefix} DHCPOFFER(${iface}) ${lease.address} ${lease.mac}`,
    `${prefix} DHCPREQUEST(${iface}) ${lease.address} ${lease.mac}`,
    `${prefix} DHCPACK(${iface}) ${lease.address} ${lease.mac} ${lease.hostName}`,
  ];
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** rsyslog's traditional format: `Mar  3 10:00:02` (local time, day padded with a space). */
function syslogTimestamp(at: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const day = String(at.getDate()).padStart(2, " ");
  return `${MONTHS[at.getMonth()]} ${day} ${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

export async function startRelaySim(options: RelaySimOptions): Promise<RelaySim> {
  const hostKey = generateHostKey();
  const authenticate = publicKeyAuthenticator(options.user, options.authorizedKey);
  const dhcpLines: string[] = [];
  const leases = new Map<string, string>();
  const neighbours = new Map<string, string>();
  const dhcpFile = (): string => {
    if (options.dhcpFormat !== "dnsmasq-leases") return dhcpLines.map((l) => `${l}\n`).join("");
    // dnsmasq writes its leases in hash order, not by time: newest first here, to be unhelpful.
    return [...leases.values()]
      .reverse()
      .map((line) => `${line}\n`)
      .join("");
  };
  const commands: RelayCommandRecord[] = [];
  const forwards: RelayForwardRecord[] = [];
  const sockets = new Set<Socket>();

  const run = (argv: string[]): ShellResult => {
    switch (argv[0]) {
      case "true":
        return { exitCode: 0, stdout: "", stderr: "" };
      case "grep":
        return grep(argv, (path) => (path === options.dhcpLogPath ? dhcpFile() : null));
      case "ip":
        return ipNeigh(argv, neighbours);
      default:
        return commandNotFound(argv[0] ?? "");
    }
  };

  const exec = (channel: ServerChannel, line: string): void => {
    const argv = parseQuotedCommand(line);
    const result = argv ? run(argv) : commandNotFound(line.trim().split(/\s+/)[0] ?? "");
    commands.push({ argv, line, exitCode: result.exitCode });
    if (result.stdout) channel.write(result.stdout);
    if (result.stderr) channel.stderr.write(result.stderr);
    channel.exit(result.exitCode);
    channel.end();
  };

  /** direct-tcpip: only to loopback, where the simulated hosts listen. */
  const forward = (
    accept: () => ServerChannel,
    reject: () => void,
    info: { destIP: string; destPort: number },
  ): void => {
    const record: RelayForwardRecord = {
      destIP: info.destIP,
      destPort: info.destPort,
      connected: false,
    };
    forwards.push(record);
    if (!isIPv4(info.destIP) || !info.destIP.startsWith("127.")) {
      reject();
      return;
    }
    const upstream = connect({ host: info.destIP, port: info.destPort, noDelay: true });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    // Before the connection is up an error is the refusal; after, the far end went away.
    upstream.once("error", () => reject());
    upstream.once("connect", () => {
      record.connected = true;
      const mac = options.macAt?.(info.destIP) ?? null;
      if (mac !== null) neighbours.set(info.destIP, mac);
      const channel = accept();
      upstream.removeAllListeners("error");
      upstream.on("error", () => channel.destroy());
      channel.on("error", () => upstream.destroy());
      channel.on("close", () => upstream.destroy());
      upstream.on("close", () => channel.destroy());
      channel.pipe(upstream).pipe(channel);
    });
  };

  const serve = (connection: Connection): void => {
    connection.on("error", () => {});
    connection.on("authentication", authenticate);
    connection.on("ready", () => {
      connection.on("session", (acceptSession) => {
        const session = acceptSession();
        session.on("pty", (_accept, reject) => reject());
        session.on("shell", (_accept, reject) => reject());
        session.on("exec", (acceptExec, _reject, info) => exec(acceptExec(), info.command));
      });
      connection.on("tcpip", forward);
    });
  };

  const sshd: SshServer = new ssh2.Server({ hostKeys: [hostKey.private] }, serve);
  // No Nagle: each small SSH packet would otherwise wait for the peer's delayed ACK (40 ms).
  const listener: Server = netServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    sshd.injectSocket(socket);
  });
  const port = await new Promise<number>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(options.port ?? 0, "127.0.0.1", () => {
      listener.off("error", reject);
      const address = listener.address();
      resolve(typeof address === "object" && address !== null ? address.port : 0);
    });
  });

  return {
    port,
    address: "127.0.0.1",
    hostKeyFingerprint: hostKey.fingerprint,
    dhcpLogPath: options.dhcpLogPath,
    appendDhcpLog(line) {
      dhcpLines.push(line);
    },
    setLease(lease) {
      const expiry = Math.floor(lease.expiresAt.getTime() / 1000);
      // `<expiry> <mac> <ip> <hostname> <client-id>`, as dnsmasq.leases holds a DHCPv4 lease.
      leases.delete(lease.mac);
      leases.set(
        lease.mac,
        `${expiry} ${lease.mac} ${lease.address} ${lease.hostName} 01:${lease.mac}`,
      );
    },
    neighbours,
    dhcpLog: dhcpFile,
    commands,
    forwards,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

/**
 * `ip -j neigh show to <address>` as iproute2 answers it: a JSON list of the entries for the
 * address (`[]` when there is none). Any other use of `ip` is refused as ip refuses an unknown
 * object.
 */
function ipNeigh(argv: string[], neighbours: Map<string, string>): ShellResult {
  const [, json, object, verb, to, address, ...rest] = argv;
  if (
    json !== "-j" ||
    object !== "neigh" ||
    verb !== "show" ||
    to !== "to" ||
    !address ||
    rest.length
  ) {
    return {
      exitCode: 255,
      stdout: "",
      stderr: `Object "${object ?? ""}" is unknown, try "ip help".\n`,
    };
  }
  const mac = neighbours.get(address);
  const entries =
    mac === undefined ? [] : [{ dst: address, dev: "eth1", lladdr: mac, state: ["REACHABLE"] }];
  return { exitCode: 0, stdout: `${JSON.stringify(entries)}\n`, stderr: "" };
}
