/**
 * Finding a host's address in the DHCP server's log, from the MAC FOG knows for it.
 *
 * Two daemons are understood, in syslog or journal form (whatever precedes the message is ignored):
 * - isc-dhcpd: `dhcpd[123]: DHCPACK on 10.0.0.5 to aa:bb:cc:dd:ee:ff (host) via eth0` (the host
 *   part is optional; `via` names the interface or the relay agent), and the answer to a
 *   DHCPINFORM, `DHCPACK to 10.0.0.5 (aa:bb:cc:dd:ee:ff) via eth0`, where the address is the one
 *   the client already holds.
 * - dnsmasq: `dnsmasq-dhcp[123]: DHCPACK(eth0) 10.0.0.5 aa:bb:cc:dd:ee:ff host`, the host name
 *   optional, and with `log-dhcp` a leading request id: `dnsmasq-dhcp[123]: 1234567 DHCPACK(…) …`.
 *
 * The newest ACK for the MAC wins, newest meaning last in the file: logs are appended to. Nothing
 * else is weighed — a later NAK, RELEASE or OFFER for the MAC does not undo an ACK — because the
 * host is reached right after its network boot, when its last ACK is the lease it holds.
 *
 * Only the log file named in the config is read; rotated files (syslog.1, *.gz) are not, so a host
 * whose last ACK has been rotated away is "not found" until it asks again (it renews at half its
 * lease time, and asks at every boot).
 */
import { z } from "zod";
import type { RemoteCommand } from "../ports/relay";

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

/**
 * The first DHCP message word of a line. Only that one is read: the daemons write their own words
 * before anything the client chose (its host name), so a host name crafted to read like
 * "DHCPACK on … to <someone else's MAC>" cannot pass for an ACK.
 */
const MESSAGE_WORD = /\bDHCP(?:DISCOVER|OFFER|REQUEST|DECLINE|ACK|NAK|RELEASE|INFORM)\b/;

/** What follows "DHCPACK" in each known form: [address, MAC]. */
const ACK_FORMS: RegExp[] = [
  // isc-dhcpd lease ACK: " on <ip> to <mac> [(<host>) ]via <if>"
  /^ on (\S+) to (\S+)(?:\s|$)/,
  // isc-dhcpd answer to DHCPINFORM: " to <ip> (<mac>) via <if>"
  /^ to (\S+) \(([^)\s]+)\)/,
  // dnsmasq: "(<if>) <ip> <mac>[ <host>]"
  /^\([^)\s]*\) (\S+) (\S+)/,
];

interface Ack {
  address: string;
  mac: string;
}

function parseAck(line: string): Ack | null {
  const word = MESSAGE_WORD.exec(line);
  if (word?.[0] !== "DHCPACK") return null;
  const rest = line.slice(word.index + word[0].length);
  for (const form of ACK_FORMS) {
    const match = form.exec(rest);
    if (!match) continue;
    const [, address = "", macText = ""] = match;
    const mac = normalizeMac(macText);
    if (mac === null || !ipv4.safeParse(address).success) return null;
    return { address, mac };
  }
  return null;
}

/**
 * The address in the newest DHCPACK for `mac` in `logText`, or null when there is none. Lines that
 * are not ACKs, ACKs for other MACs and ACKs whose address is not a valid IPv4 are skipped.
 * Throws RangeError when `mac` is not a MAC address (callers check it first).
 */
export function findLeaseAddress(logText: string, mac: string): string | null {
  const wanted = requireMac(mac);
  const lines = logText.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const ack = parseAck(lines[i] ?? "");
    if (ack && ack.mac === wanted) return ack.address;
  }
  return null;
}

/** Seconds allowed to read the log; a grep through even a large syslog takes far less. */
export const LEASE_COMMAND_TIMEOUT_SECONDS = 30;

/**
 * The remote command that reads the log lines mentioning `mac` (colon or dash form, any case), to
 * feed findLeaseAddress. Fixed words plus the MAC and the log path as separate arguments: nothing
 * is pasted into a shell line. Exit 1 is grep's "no line matched"; 2 (unreadable or missing file)
 * fails the command. `-a` keeps grep printing lines when a log holds a stray binary byte.
 * Throws RangeError when `mac` is not a MAC address.
 */
export function leaseCommand(dhcpLog: string, mac: string): RemoteCommand {
  const colons = requireMac(mac);
  const dashes = colons.replaceAll(":", "-");
  return {
    argv: ["grep", "-a", "-i", "-F", "-e", colons, "-e", dashes, "--", dhcpLog],
    timeoutSeconds: LEASE_COMMAND_TIMEOUT_SECONDS,
    okExitCodes: [0, 1],
  };
}
