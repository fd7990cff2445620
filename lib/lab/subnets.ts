/**
 * The lab's own networks (`lab_subnets` in pharos.yaml): every address LaaS reaches a host at —
 * leased, static in the inventory, or known to FOG — must lie in one of them, and the relay is
 * asked to forward nowhere else. An address outside them is a misconfiguration or a forgery, and
 * either way no login, password or pod goes there.
 */
import { z } from "zod";
import { cidrContains, parseCidr } from "../config/ipv4";
import { AddressOutsideLabError } from "../errors";

const ipv4 = z.ipv4();

export function inLabSubnets(address: string, subnets: readonly string[]): boolean {
  if (!ipv4.safeParse(address).success) return false;
  return subnets.some((cidr) => cidrContains(parseCidr(cidr), address));
}

/**
 * Throws AddressOutsideLabError unless `address` is an IPv4 address in one of `subnets`.
 * `what` says whose address it is and where it came from, for the message.
 */
export function requireInLabSubnets(
  address: string,
  subnets: readonly string[],
  what: string,
): void {
  if (inLabSubnets(address, subnets)) return;
  const reason = ipv4.safeParse(address).success
    ? `is outside the lab's subnets (${subnets.join(", ") || "none configured"})`
    : "is not an IPv4 address, so it cannot be checked against the lab's subnets";
  throw new AddressOutsideLabError(
    `${what} ${JSON.stringify(address)} ${reason}; refusing to reach it. ` +
      "If the address is right, add its subnet to lab_subnets in pharos.yaml",
  );
}
