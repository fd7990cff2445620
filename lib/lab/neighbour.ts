/**
 * Who answers at a host's address, as the relay's kernel saw it: the relay shares the hosts'
 * network in the usual lab layout, so its neighbour (ARP) table maps the address to the MAC of
 * the machine that answered. That MAC must be the one FOG has for the booked host before a key
 * never seen is trusted, and again before a root password is sent: a machine that took the
 * host's address (or a forged lease pointing elsewhere) shows another MAC, or none.
 *
 * A machine on the lab network can still answer ARP with a forged MAC; a lab that must rule
 * that out pins host keys (`relay.host_identity: pinned`).
 */
import { z } from "zod";
import { HostIdentityError } from "../errors";
import type { RemoteCommand } from "../ports/relay";
import { normalizeMac } from "./dhcp";

const NEIGHBOUR_COMMAND_TIMEOUT_SECONDS = 10;

/** `ip -j neigh show to <address>`: JSON, one object per entry, `[]` when there is none. */
export function neighbourCommand(address: string): RemoteCommand {
  return {
    argv: ["ip", "-j", "neigh", "show", "to", address],
    timeoutSeconds: NEIGHBOUR_COMMAND_TIMEOUT_SECONDS,
  };
}

const neighbourEntries = z.array(
  z.looseObject({
    dst: z.string(),
    dev: z.string().optional(),
    lladdr: z.string().optional(),
    state: z.array(z.string()).optional(),
  }),
);

/**
 * Throws HostIdentityError unless the relay's neighbour table (the output of neighbourCommand)
 * holds an entry for `address` and every entry for it names `mac`. An address with no resolved
 * entry (never answered, or not on the relay's links) proves nothing and is refused too.
 */
export function requireNeighbourMac(
  output: string,
  address: string,
  mac: string,
  hostName: string,
): void {
  const wanted = normalizeMac(mac);
  let parsed: z.infer<typeof neighbourEntries>;
  try {
    parsed = neighbourEntries.parse(JSON.parse(output));
  } catch {
    throw new HostIdentityError(
      `the relay's neighbour table could not be read (ip -j neigh printed no JSON list) while ` +
        `checking that ${address} is ${hostName}`,
    );
  }
  const seen = parsed
    .filter((entry) => entry.dst === address && entry.lladdr !== undefined)
    .map((entry) => normalizeMac(entry.lladdr ?? "") ?? String(entry.lladdr));
  if (seen.length === 0) {
    throw new HostIdentityError(
      `the relay has no neighbour entry for ${address}, so the machine answering there cannot be ` +
        `shown to be ${hostName}; nothing was sent to it. If the relay does not share the hosts' ` +
        "network, pin host keys instead (relay.host_identity: pinned, docs/configuration.md)",
    );
  }
  const others = seen.filter((seenMac) => seenMac !== wanted);
  if (wanted === null || others.length > 0) {
    throw new HostIdentityError(
      `the machine answering at ${address} has MAC ${others.join(", ") || "(none)"} in the ` +
        `relay's neighbour table, not ${hostName}'s ${mac} (as FOG has it): another machine holds ` +
        "the address; nothing was sent to it. Check the lab network (a duplicate address or a " +
        `forged lease); \`laas deploy --host ${hostName} --reset\` returns the host to service`,
    );
  }
}
