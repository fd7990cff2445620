/**
 * Finding a host's address from what the lab's DHCP server wrote, from the MAC FOG knows for it.
 *
 * What is read decides who can lie about it, so the source is named in the config
 * (`dhcp_log_format`) and nothing else is accepted:
 * - `dhcpd-leases`: isc-dhcpd's lease database (`/var/lib/dhcp/dhcpd.leases`). Only dhcpd writes
 *   it, appending every change, so an address's last `lease <ip> { … }` block is its state. Of
 *   the addresses whose last block is active and names the MAC, the one written last wins.
 * - `dnsmasq-leases`: dnsmasq's lease file (`/var/lib/misc/dnsmasq.leases`), one line per lease:
 *   `<expiry> <mac> <ip> <hostname> <client-id>`. dnsmasq rewrites it whole, in no time order, so
 *   the lease that expires last wins (expiry 0 is an infinite lease).
 * - `syslog`: the system log, where any program may write. A line counts only when the syslog
 *   header is followed directly by the DHCP daemon's own tag (`dhcpd[pid]:`,
 *   `dnsmasq-dhcp[pid]:`) and the message starts with the daemon's DHCPACK wording. A line of
 *   another program quoting such a text — sshd's `Invalid user DHCPACK on … to <mac>` after a
 *   login attempt with that user name — is not a lease. Local users of the log's machine can still
 *   write tagged lines (`logger -t`), and so can any machine whose remote syslog that log
 *   collects, which is why the shipped configs read a lease file.
 *   isc-dhcpd: `dhcpd[123]: DHCPACK on 10.0.0.5 to aa:bb:cc:dd:ee:ff (host) via eth0` and the
 *   answer to a DHCPINFORM `DHCPACK to 10.0.0.5 (aa:bb:cc:dd:ee:ff) via eth0`; dnsmasq:
 *   `dnsmasq-dhcp[123]: [<request id> ]DHCPACK(eth0) 10.0.0.5 aa:bb:cc:dd:ee:ff [host]`. The
 *   newest ACK (last in the file) wins; a later NAK or RELEASE does not undo it, because the host
 *   is reached right after its network boot, when its last ACK is the lease it holds. Rotated
 *   files are not read.
 *
 * Whatever the source, the address found must still lie in the lab's subnets (subnets.ts).
 */
import { z } from "zod";
import type { RemoteCommand } from "../ports/relay";

export const LEASE_FORMATS = ["dhcpd-leases", "dnsmasq-leases", "syslog"] as const;
export type LeaseFormat = (typeof LEASE_FORMATS)[number];

const MAC_PATTERN = /^[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(?:\1[0-9a-f]{1,2}){4}$/i;

/**
 * `aa:bb:cc:dd:ee:ff` for a MAC written with colons or dashes in any case (single-digit octets
 * padded), or null when the text is not a 6-octet MAC.
 */
export function normalizeMac(text: string): string | null {
  const trimmed = text.trim();
  if (!MAC_PATTERN.test(trimmed)) return null;
  return trimmed
    .toLowerCase()
    .split(/[:-]/)
    .map((octet) => octet.padStart(2, "0"))
    .join(":");
}

function requireMac(mac: string): string {
  const normalized = normalizeMac(mac);
  if (normalized === null) throw new RangeError(`not a MAC address: ${JSON.stringify(mac)}`);
  return normalized;
}

const ipv4 = z.ipv4();
const isIpv4 = (text: string): boolean => ipv4.safeParse(text).success;

interface Lease {
  address: string;
  mac: string;
}

// ---------------------------------------------------------------------------------------------
// syslog

/**
 * The syslog header rsyslog and journalctl write — a traditional (`Mar  3 10:00:02`) or RFC 3339
 * (`2024-03-03T10:00:02.123+00:00`) time stamp and the host name — then the program's tag. The
 * tag must be the DHCP daemon's own, right there: the header is written by the log daemon, the
 * rest of the line by whoever logged it.
 */
const DAEMON_LINE =
  /^(?:[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d+)?|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?) \S+ (dhcpd|dnsmasq-dhcp)\[\d+\]: (.*)$/;

/** The daemons' own DHCPACK wordings, anchored at the message start: [address, MAC]. */
const ACK_FORMS: Record<"dhcpd" | "dnsmasq-dhcp", RegExp[]> = {
  // "on <ip> to <mac> [(<host>) ]via <if>", and the DHCPINFORM answer "to <ip> (<mac>) via <if>"
  dhcpd: [/^DHCPACK on (\S+) to (\S+)(?:\s|$)/, /^DHCPACK to (\S+) \(([^)\s]+)\)/],
  // "[<request id> ]DHCPACK(<if>) <ip> <mac>[ <host>]"
  "dnsmasq-dhcp": [/^(?:\d+ )?DHCPACK\([^)\s]*\) (\S+) (\S+)(?:\s|$)/],
};

function parseSyslogAck(line: string): Lease | null {
  const daemon = DAEMON_LINE.exec(line);
  if (!daemon) return null;
  const [, tag = "", message = ""] = daemon;
  for (const form of ACK_FORMS[tag as keyof typeof ACK_FORMS] ?? []) {
    const match = form.exec(message);
    if (!match) continue;
    const [, address = "", macText = ""] = match;
    const mac = normalizeMac(macText);
    return mac !== null && isIpv4(address) ? { address, mac } : null;
  }
  return null;
}

function newestSyslogAck(text: string, mac: string): string | null {
  const lines = text.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const ack = parseSyslogAck(lines[i] ?? "");
    if (ack?.mac === mac) return ack.address;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// isc-dhcpd's dhcpd.leases

/**
 * The lease file's tokens: words, quoted strings (with dhcpd's backslash escapes), and the
 * punctuation `{ } ;`. Comments run from `#` to the line end. A client-chosen string (the host
 * name) stays one token whatever it holds, so it cannot open or close a block.
 */
function leaseFileTokens(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "{" || c === "}" || c === ";") {
      tokens.push(c);
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      tokens.push('"string"');
      i = j + 1;
    } else {
      let j = i;
      while (j < text.length && !/[\s{};"#]/.test(text[j] as string)) j++;
      tokens.push(text.slice(i, j));
      i = j;
    }
  }
  return tokens;
}

/** Statements of a block, each a list of words, from just after its `{` to its `}`. */
function readBlock(tokens: string[], start: number): { statements: string[][]; end: number } {
  const statements: string[][] = [];
  let current: string[] = [];
  let i = start;
  while (i < tokens.length) {
    const token = tokens[i] as string;
    if (token === "}") return { statements, end: i + 1 };
    if (token === ";") {
      if (current.length > 0) statements.push(current);
      current = [];
      i++;
    } else if (token === "{") {
      // A nested block (dhcpd writes none inside a lease, but skip one whole if present).
      i = readBlock(tokens, i + 1).end;
      current = [];
    } else {
      current.push(token);
      i++;
    }
  }
  return { statements, end: i };
}

function newestDhcpdLease(text: string, mac: string): string | null {
  const tokens = leaseFileTokens(text);
  // Each address's state is its last block: a later block that frees the address or gives it to
  // another MAC ends what an earlier one said. Insertion order keeps the newest block last.
  const latest = new Map<string, { active: boolean; mac: string | null }>();
  let i = 0;
  while (i < tokens.length) {
    if (tokens[i] === "{") {
      // A block of another kind at the top level (host, failover peer, …): skipped whole.
      i = readBlock(tokens, i + 1).end;
      continue;
    }
    if (tokens[i] === "lease" && tokens[i + 2] === "{") {
      const address = tokens[i + 1] as string;
      const { statements, end } = readBlock(tokens, i + 3);
      const hardware = statements.find((s) => s[0] === "hardware" && s[1] === "ethernet");
      const binding = statements.find((s) => s[0] === "binding" && s[1] === "state");
      latest.delete(address);
      latest.set(address, {
        active: binding === undefined || binding[2] === "active",
        mac: normalizeMac(hardware?.[2] ?? ""),
      });
      i = end;
      continue;
    }
    i++;
  }
  let found: string | null = null;
  for (const [address, lease] of latest) {
    if (lease.active && lease.mac === mac && isIpv4(address)) found = address;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// dnsmasq's lease file

function latestDnsmasqLease(text: string, mac: string): string | null {
  let best: { expiry: number; address: string } | null = null;
  for (const line of text.split(/\r?\n/)) {
    const [expiryText = "", macText = "", address = ""] = line.trim().split(/\s+/);
    if (!/^\d+$/.test(expiryText) || normalizeMac(macText) !== mac || !isIpv4(address)) continue;
    const expiry = expiryText === "0" ? Number.POSITIVE_INFINITY : Number(expiryText);
    if (best === null || expiry >= best.expiry) best = { expiry, address };
  }
  return best?.address ?? null;
}

// ---------------------------------------------------------------------------------------------

/**
 * The address of the newest lease for `mac` in `text` read from a `format` source, or null when
 * there is none. Entries that are not leases, leases of other MACs and addresses that are not
 * valid IPv4 are skipped. Throws RangeError when `mac` is not a MAC address (callers check it).
 */
export function findLeaseAddress(text: string, mac: string, format: LeaseFormat): string | null {
  const wanted = requireMac(mac);
  switch (format) {
    case "syslog":
      return newestSyslogAck(text, wanted);
    case "dhcpd-leases":
      return newestDhcpdLease(text, wanted);
    case "dnsmasq-leases":
      return latestDnsmasqLease(text, wanted);
  }
}

/** Seconds allowed to read the source; even a large syslog or lease file takes far less. */
export const LEASE_COMMAND_TIMEOUT_SECONDS = 30;

/**
 * The remote command that reads what findLeaseAddress needs: the lines mentioning `mac` (colon or
 * dash form, any case) of a log or dnsmasq's file, or the whole of dhcpd.leases (a lease spans
 * lines). Fixed words plus the MAC and the path as separate arguments: nothing is pasted into a
 * shell line. For grep, exit 1 is "no line matched"; 2 (unreadable or missing file) fails the
 * command. `-a` keeps grep printing lines when a log holds a stray binary byte.
 * Throws RangeError when `mac` is not a MAC address.
 */
export function leaseCommand(path: string, mac: string, format: LeaseFormat): RemoteCommand {
  const colons = requireMac(mac);
  if (format === "dhcpd-leases") {
    return {
      argv: ["cat", "--", path],
      timeoutSeconds: LEASE_COMMAND_TIMEOUT_SECONDS,
      idempotent: true,
    };
  }
  const dashes = colons.replaceAll(":", "-");
  return {
    argv: ["grep", "-a", "-i", "-F", "-e", colons, "-e", dashes, "--", path],
    timeoutSeconds: LEASE_COMMAND_TIMEOUT_SECONDS,
    okExitCodes: [0, 1],
    idempotent: true,
  };
}
