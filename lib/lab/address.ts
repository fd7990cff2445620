/**
 * Where a lab host can be reached: the static address from the inventory when there is one,
 * otherwise the address of the newest lease for its MAC (FOG's primary MAC) in what the DHCP
 * server wrote (its lease file, or its own lines in the system log: dhcp.ts). That is read on the
 * DHCP server through the relay, or on the relay itself when the config names no DHCP server
 * (`dhcp_server: null`). Either way the address must lie in the lab's subnets, or nothing goes
 * there (AddressOutsideLabError, not retried).
 *
 * A missing ACK is not final: right after imaging the host may not have asked yet. It throws
 * AddressNotFoundError, which the workflow retries until the step's deadline, then fails with its
 * message.
 */
import { LaasError, NotFoundError, ProtocolError } from "../errors";
import type { Logger } from "../log";
import type { CommandResult, HostLogin, Relay } from "../ports/relay";
import { findLeaseAddress, type LeaseFormat, leaseCommand, normalizeMac } from "./dhcp";
import { requireInLabSubnets } from "./subnets";

/** How to log in to the DHCP server (through the relay) to read its log. */
export type DhcpServerLogin = HostLogin;

/** No DHCPACK for the host's MAC in the log (yet). Retried by the workflow until its deadline. */
export class AddressNotFoundError extends LaasError {
  override name = "AddressNotFound";
}

export interface AddressDeps {
  relay: Relay;
  logger: Logger;
}

export interface AddressQuery {
  /** Inventory / FOG host name, for messages and logs. */
  hostName: string;
  /** The inventory's static address; when set it is the answer and nothing is read. */
  staticAddress: string | null;
  /** FOG's primary MAC for the host, or null when FOG has none. */
  mac: string | null;
  /** Path of the DHCP log or lease file on the machine that holds it. */
  dhcpLog: string;
  dhcpLogFormat: LeaseFormat;
  /** The lab's subnets (CIDRs): the address found must lie in one. */
  labSubnets: readonly string[];
  /** The DHCP server to read the log on, or null to read it on the relay. */
  dhcpServer: DhcpServerLogin | null;
}

export interface DiscoveredAddress {
  address: string;
  source: "inventory" | "dhcp";
}

export async function discoverAddress(
  deps: AddressDeps,
  input: AddressQuery,
): Promise<DiscoveredAddress> {
  const { hostName, staticAddress, dhcpLog, dhcpLogFormat, dhcpServer, labSubnets } = input;
  const log = deps.logger.child({ host: hostName });

  if (staticAddress !== null) {
    requireInLabSubnets(staticAddress, labSubnets, `the inventory's address of ${hostName}`);
    log.info({ address: staticAddress, source: "inventory" }, "host address from the inventory");
    return { address: staticAddress, source: "inventory" };
  }

  if (input.mac === null) {
    throw new NotFoundError(
      `host ${hostName} has no primary MAC in FOG, so its address cannot be found in the DHCP ` +
        "log; register its MAC in FOG or give it a static address in the inventory",
    );
  }
  const mac = normalizeMac(input.mac);
  if (mac === null) {
    throw new ProtocolError(
      `FOG's primary MAC for host ${hostName} is not a MAC address: ${JSON.stringify(input.mac)}`,
    );
  }

  const where = dhcpServer ? dhcpServer.hostName : "the relay";
  const command = leaseCommand(dhcpLog, mac, dhcpLogFormat);
  const result = await deps.relay.session(async (session): Promise<CommandResult> => {
    if (!dhcpServer) return session.onRelay(command);
    const server = await session.host(dhcpServer);
    log.debug({ dhcpServer: dhcpServer.hostName, hostKey: server.hostKey }, "on the DHCP server");
    return server.run(command);
  });

  const address = findLeaseAddress(result.stdout, mac, dhcpLogFormat);
  if (address === null) {
    throw new AddressNotFoundError(
      `no ${dhcpLogFormat === "syslog" ? "DHCPACK" : "active lease"} for ${mac} in ${dhcpLog} on ${where}`,
    );
  }
  requireInLabSubnets(address, labSubnets, `the address leased to ${hostName} (${dhcpLog})`);
  log.info({ address, source: "dhcp", mac, dhcpLog, on: where }, "host address from the DHCP log");
  return { address, source: "dhcp" };
}
