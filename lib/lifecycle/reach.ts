/**
 * After imaging: find the host's address (inventory, else the newest DHCPACK for its MAC) and
 * wait until it answers SSH through the relay. Each look is one short step; the workflow waits
 * between looks (doubling the pause, up to a cap) until the boot deadline.
 */
import type { Runtime } from "../app/runtime";
import { inventoryHostByName } from "../config/load";
import type { InstallerConfig } from "../config/types";
import type { Host } from "../domain/host";
import { ConfigError, errorMessage, LaasError, NotFoundError, TransientError } from "../errors";
import { AddressNotFoundError, discoverAddress } from "../lab/address";
import type { PhaseInput } from "../ports/engine";
import type { HostLogin } from "../ports/relay";
import { hostLogin, requireRelay } from "./host-access";
import { imagingConfig, loadCurrentBooking } from "./imaging";
import { noteProgress } from "./transitions";

/** The host did not come up (no address, no SSH) by its boot deadline. */
export class HostUnreachableError extends LaasError {
  override name = "HostUnreachable";
}

export interface ReachState {
  deadline: string;
  /** Seconds the workflow pauses before the next look. */
  waitSeconds: number;
  done: boolean;
  address: string | null;
  /** Why the last look failed, for the deadline's message. */
  lastProblem: string | null;
}

export interface CheckHostInput extends PhaseInput {
  reach?: ReachState;
}

const FIRST_PAUSE_SECONDS = 2;
const LONGEST_PAUSE_SECONDS = 60;

export async function checkHost(rt: Runtime, input: CheckHostInput): Promise<ReachState> {
  const booking = await loadCurrentBooking(rt, input);
  const config = imagingConfig(rt, booking, input.phase);
  const now = rt.now();
  const state: ReachState = input.reach ?? {
    deadline: new Date(now.getTime() + config.pod.bootTimeoutSeconds * 1000).toISOString(),
    waitSeconds: FIRST_PAUSE_SECONDS / 2,
    done: false,
    address: null,
    lastProblem: null,
  };
  try {
    const host = await rt.store.getHost(input.hostName);
    if (!host) throw new NotFoundError(`host ${input.hostName} is not in the store`);
    const address = await findAddress(rt, host, config);
    const login = hostLogin(rt, host, address);
    const hostKey = await requireRelay(rt).session(async (session) => {
      const host = await session.host(login);
      await host.run({ argv: ["true"], timeoutSeconds: 30 });
      return host.hostKey;
    });
    // The key accepted is the one required from now on (first login after imaging records it).
    await rt.store.updateHost(input.hostName, (h) =>
      h.hostKey === hostKey && h.address === address ? null : { ...h, hostKey, address },
    );
    await rt.store.updateBooking(
      booking.id,
      noteProgress(input.phase, input.generation, `host up at ${address}`),
    );
    return { ...state, done: true, address, lastProblem: null };
  } catch (error) {
    if (!(error instanceof AddressNotFoundError || error instanceof TransientError)) throw error;
    const problem = errorMessage(error);
    if (now.getTime() > Date.parse(state.deadline)) {
      throw new HostUnreachableError(
        `${input.hostName} did not answer SSH by its boot deadline ${state.deadline}: ${problem}`,
      );
    }
    await rt.store.updateBooking(
      booking.id,
      noteProgress(input.phase, input.generation, "waiting for the host to boot"),
    );
    return {
      ...state,
      done: false,
      waitSeconds: Math.min(state.waitSeconds * 2, LONGEST_PAUSE_SECONDS),
      lastProblem: problem,
    };
  }
}

async function findAddress(rt: Runtime, host: Host, config: InstallerConfig): Promise<string> {
  const { dhcpLog, dhcpServer, dhcpServerHostKey } = config;
  const inventoryHost = inventoryHostByName(rt.config.inventory, host.name);
  const relayConfig = rt.config.relay;
  let serverLogin: HostLogin | null = null;
  if (dhcpServer !== null) {
    if (!relayConfig) throw new ConfigError(`${rt.config.file}: relay: required`);
    serverLogin = {
      hostName: dhcpServer,
      address: dhcpServer,
      port: 22,
      user: relayConfig.user,
      key: relayConfig.key,
      expectedHostKey: dhcpServerHostKey,
    };
  }
  const found = await discoverAddress(
    { relay: requireRelay(rt), logger: rt.logger },
    {
      hostName: host.name,
      staticAddress: inventoryHost?.address ?? null,
      mac: host.mac,
      dhcpLog,
      dhcpServer: serverLogin,
    },
  );
  return found.address;
}
