/**
 * Reading back the MAC addresses libvirt gave a domain's interfaces, from `virsh domiflist`:
 *
 *  Interface   Type      Source    Model    MAC
 * -------------------------------------------------------------
 *  -           network   admin     virtio   52:54:00:6b:3c:58
 *  vnet3       bridge    br-ext    virtio   52:54:00:0e:7a:11
 *
 * The interface is `-` while the domain is not running. Columns are padded with spaces, so a row
 * is read from both ends: interface and type are the first two words, MAC and model the last two,
 * and the source is whatever lies between (a source name may hold spaces; no other column can).
 */
import { ProtocolError } from "../errors";

export interface DomainInterface {
  /** Host-side device (vnetN), or null while the domain is not running (`-`). */
  interface: string | null;
  /** `network`, `bridge`, `direct`, … as libvirt reports it. */
  type: string;
  /** The network or bridge the interface is plugged into. */
  source: string;
  /** Device model, or null when libvirt shows `-`. */
  model: string | null;
  /** Lower-case, colon-separated. */
  mac: string;
}

const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;
const HEADER = /^\s*Interface\s+Type\s+Source\s+Model\s+MAC\s*$/;
const RULE = /^\s*-+\s*$/;

function orNull(word: string): string | null {
  return word === "-" ? null : word;
}

/** Every interface row of `virsh domiflist` output, in order. */
export function parseDomiflist(output: string): DomainInterface[] {
  const lines = output.split(/\r?\n/).filter((line) => line.trim() !== "");
  const headerAt = lines.findIndex((line) => HEADER.test(line));
  if (headerAt < 0 || !RULE.test(lines[headerAt + 1] ?? "")) {
    throw new ProtocolError(
      `virsh domiflist: no "Interface Type Source Model MAC" header in ${JSON.stringify(output.slice(0, 200))}`,
    );
  }
  return lines.slice(headerAt + 2).map((line) => {
    const words = line.trim().split(/\s+/);
    const mac = words.at(-1) ?? "";
    if (words.length < 5 || !MAC.test(mac)) {
      throw new ProtocolError(`virsh domiflist: cannot read row ${JSON.stringify(line)}`);
    }
    return {
      interface: orNull(words[0]!),
      type: words[1]!,
      source: words.slice(2, -2).join(" "),
      model: orNull(words.at(-2)!),
      mac: mac.toLowerCase(),
    };
  });
}

/**
 * MAC per network or bridge name. A domain with two interfaces on one source keeps the first
 * here; parseDomiflist has them all.
 */
export function macsBySource(output: string): Record<string, string> {
  const macs = new Map<string, string>();
  for (const row of parseDomiflist(output)) {
    if (!macs.has(row.source)) macs.set(row.source, row.mac);
  }
  // fromEntries defines own properties, so a source named "__proto__" is just a key.
  return Object.fromEntries(macs);
}
