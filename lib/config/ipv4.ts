/**
 * The little IPv4 arithmetic the network file checks need: libvirt refuses a network whose
 * netmask, bridge address or DHCP range disagree, and we would rather say so at start.
 */

/** 32-bit value of a dotted quad already validated as IPv4. */
export function ipv4ToInt(address: string): number {
  return address.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

export function prefixToMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Prefix length of a contiguous netmask, or null when the mask has holes (255.0.255.0). */
export function maskToPrefix(netmask: string): number | null {
  const mask = ipv4ToInt(netmask);
  for (let prefix = 0; prefix <= 32; prefix++) {
    if (prefixToMask(prefix) === mask) return prefix;
  }
  return null;
}

export interface Cidr {
  network: number;
  prefix: number;
}

/** Parses `a.b.c.d/n` (already validated as an IPv4 CIDR). */
export function parseCidr(cidr: string): Cidr {
  const [address = "", bits = "0"] = cidr.split("/");
  const prefix = Number(bits);
  return { network: (ipv4ToInt(address) & prefixToMask(prefix)) >>> 0, prefix };
}

export function cidrContains(cidr: Cidr, address: string): boolean {
  return (ipv4ToInt(address) & prefixToMask(cidr.prefix)) >>> 0 === cidr.network;
}
