/**
 * The watcher's look at lab hosts, through one relay session per cycle for all of them: a host
 * coming up after imaging (its address from the inventory or the DHCP log, then an SSH login —
 * the first key seen since the deploy is recorded), and an installer running on a host (its exit
 * status file).
 */
import pLimit from "p-limit";
import { inventoryHostByName } from "../config/load";
import type { InstallerConfig } from "../config/types";
import type { Host } from "../domain/host";
import {
  ConfigError,
  errorMessage,
  NotFoundError,
  TransientError,
  unreachableReason,
} from "../errors";
import { AddressNotFoundError, discoverAddress } from "../lab/address";
import type { HostLogin, Relay, RelaySession } from "../ports/relay";
import type { Runtime } from "../ports/runtime";
import { doneResult, resultText } from "./checkpoints";
import { hostLogin, requireRelay } from "./host-access";
import { START_INSTALLER } from "./installer";
import { recordHostKey } from "./transitions";
import { isPastDeadline, type Look, type Looks, type Waiting } from "./watch";

/** Logins open at once through the relay during a look. */
const CONCURRENT_LOGINS = 8;
const LOOK_TIMEOUT_SECONDS = 30;

export async function lookAtLabHosts(
  rt: Runtime,
  booting: Waiting[],
  installing: Waiting[],
  looks: Looks,
): Promise<void> {
  if (booting.length + installing.length === 0) return;
  const relay = requireRelay(rt);
  try {
    await relay.session(async (session) => {
      const limit = pLimit(CONCURRENT_LOGINS);
      await Promise.all([
        ...booting.map((entry) =>
          limit(async () => looks.set(entry.booking.id, await lookAtBoot(rt, session, entry))),
        ),
        ...installing.map((entry) =>
          limit(async () => looks.set(entry.booking.id, await lookAtInstaller(rt, session, entry))),
        ),
      ]);
    });
  } catch (error) {
    // The relay itself is out of reach: every host wait goes on, each towards its own deadline,
    // and a host's says what it waits for.
    const problem = `the relay is out of reach: ${errorMessage(error)}`;
    rt.logger.warn(
      { err: errorMessage(error), waits: booting.length + installing.length },
      "the watcher cannot reach the relay: the hosts' waits go on, each to its deadline",
    );
    const cannotLook = `the relay does not answer: ${unreachableReason(error)}`;
    for (const entry of [...booting, ...installing]) {
      if (!looks.has(entry.booking.id))
        looks.set(entry.booking.id, pastDeadline(rt, entry, problem, cannotLook));
    }
  }
}

/**
 * What a wait whose event has not come comes to: pending, or failed once past its deadline. A
 * host's wait that cannot be looked at (`cannotLook`: the relay down) says why in its progress.
 */
function pastDeadline(rt: Runtime, entry: Waiting, problem: string, cannotLook?: string): Look {
  if (!isPastDeadline(entry.wait, rt.now())) {
    const booting = cannotLook
      ? `waiting for the host to boot (${cannotLook})`
      : "waiting for the host to boot";
    return { kind: "pending", progress: entry.wait.event === "host-up" ? booting : null };
  }
  const { hostName } = entry.booking;
  return entry.wait.event === "host-up"
    ? {
        kind: "failed",
        error: "HostUnreachable",
        cause: `${hostName} did not answer SSH by its boot deadline ${entry.wait.deadline}: ${problem}`,
      }
    : {
        kind: "failed",
        error: "InstallerFailed",
        cause: `the installer on ${hostName} did not finish by its deadline ${entry.wait.deadline}${problem ? `: ${problem}` : ""}`,
      };
}

async function lookAtBoot(rt: Runtime, session: RelaySession, entry: Waiting): Promise<Look> {
  const { booking } = entry;
  try {
    const host = await rt.store.getHost(booking.hostName);
    if (!host) throw new NotFoundError(`host ${booking.hostName} is not in the store`);
    const address = await findAddress(rt, session, host, entry.config);
    const login = hostLogin(rt, host, address);
    const reached = await session.host(login);
    await reached.run({ argv: ["true"], timeoutSeconds: LOOK_TIMEOUT_SECONDS, idempotent: true });
    // The key accepted is the one required from now on (the first login after imaging records it).
    await rt.store.updateHost(host.name, (h): Host | null => {
      const keyed = recordHostKey(reached.hostKey)(h) ?? h;
      return keyed === h && h.address === address ? null : { ...keyed, address };
    });
    return { kind: "done", result: { address }, progress: `host up at ${address}` };
  } catch (error) {
    if (error instanceof AddressNotFoundError || error instanceof TransientError) {
      return pastDeadline(rt, entry, errorMessage(error));
    }
    return { kind: "failed", error: nameOf(error), cause: errorMessage(error) };
  }
}

async function lookAtInstaller(rt: Runtime, session: RelaySession, entry: Waiting): Promise<Look> {
  const { booking } = entry;
  const started = doneResult(booking, entry.input, START_INSTALLER);
  const base = resultText(started, "base");
  if (base === null) {
    return { kind: "done", result: { exitCode: null, ran: false }, progress: "installer finished" };
  }
  try {
    const host = await rt.store.getHost(booking.hostName);
    if (!host?.address) throw new NotFoundError(`${booking.hostName} has no known address`);
    const reached = await session.host(hostLogin(rt, host, host.address));
    const read = await reached.run({
      argv: ["cat", "--", `${base}.status`],
      timeoutSeconds: LOOK_TIMEOUT_SECONDS,
      okExitCodes: [0, 1],
      idempotent: true,
    });
    if (read.exitCode !== 0) return pastDeadline(rt, entry, "");
    const code = Number.parseInt(read.stdout.trim(), 10);
    if (code === 0) {
      return { kind: "done", result: { exitCode: 0, ran: true }, progress: "installer finished" };
    }
    const tail = await reached.run({
      argv: ["tail", "-n", "20", "--", `${base}.log`],
      timeoutSeconds: LOOK_TIMEOUT_SECONDS,
      okExitCodes: [0, 1],
      idempotent: true,
    });
    return {
      kind: "failed",
      error: "InstallerFailed",
      cause: `the installer on ${booking.hostName} exited with ${Number.isNaN(code) ? "an unreadable status" : code}; its log ends:\n${tail.stdout.trim()}`,
    };
  } catch (error) {
    if (error instanceof TransientError) return pastDeadline(rt, entry, errorMessage(error));
    return { kind: "failed", error: nameOf(error), cause: errorMessage(error) };
  }
}

/** The address: the inventory's, or the newest DHCPACK for the host's MAC, read through the relay. */
async function findAddress(
  rt: Runtime,
  session: RelaySession,
  host: Host,
  config: InstallerConfig,
): Promise<string> {
  const { dhcpLog, dhcpLogFormat, dhcpServer, dhcpServerHostKey } = config;
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
      // The DHCP server's key is pinned (required with dhcp_server): nothing to prove beyond it.
      identity: { kind: "pinned" },
    };
  }
  // The look's open session serves the lease lookup too: no second login to the relay.
  const shared: Relay = { session: (work) => work(session) };
  const found = await discoverAddress(
    { relay: shared, logger: rt.logger },
    {
      hostName: host.name,
      staticAddress: inventoryHost?.address ?? null,
      mac: host.mac,
      dhcpLog,
      dhcpLogFormat,
      dhcpServer: serverLogin,
      labSubnets: rt.config.labSubnets,
    },
  );
  return found.address;
}

function nameOf(error: unknown): string {
  return error instanceof Error ? error.name : "Error";
}
