/**
 * How lifecycle steps reach a lab host: through the relay, logging in with the host login of the
 * power settings, and requiring the pinned host key or the one recorded after the host's last
 * imaging (the first login after imaging records it — see docs/configuration.md, Power).
 */

import { inventoryHostByName, powerFor } from "../config/load";
import type { Host } from "../domain/host";
import { ConfigError, HostUnreachableError } from "../errors";
import type { Logger } from "../log";
import type {
  CommandResult,
  HostIdentityProof,
  HostLogin,
  HostSession,
  OutputSink,
  Relay,
  RemoteCommand,
} from "../ports/relay";
import type { Runtime } from "../ports/runtime";

export function requireRelay(rt: Runtime): Relay {
  if (!rt.relay) {
    throw new ConfigError(
      `${rt.config.file}: relay: required to reach hosts after imaging (address, pod, installer)`,
    );
  }
  return rt.relay;
}

export function hostLogin(rt: Runtime, host: Host, address: string): HostLogin {
  const hostName = host.name;
  const inventoryHost = inventoryHostByName(rt.config.inventory, hostName);
  const power = inventoryHost ? powerFor(rt.config, inventoryHost) : null;
  if (!power) {
    throw new ConfigError(
      `${rt.config.file}: power: no host login (user, key) configured for ${hostName}`,
    );
  }
  return {
    hostName,
    address,
    port: power.port,
    user: power.user,
    key: power.key,
    // `pinned` means what it says: a key recorded at a first login is not enough.
    expectedHostKey:
      rt.config.relay?.hostIdentity === "pinned" ? power.hostKey : (power.hostKey ?? host.hostKey),
    identity: identityProof(rt, host),
  };
}

/**
 * How a first key of `host` is shown to be its own (relay.host_identity): by default the relay's
 * neighbour table must map the address to the MAC FOG has for it. A host without a MAC in FOG
 * gets a proof that refuses a first key (a pinned or recorded key still logs in).
 */
export function identityProof(rt: Runtime, host: Host): HostIdentityProof {
  const mode = rt.config.relay?.hostIdentity ?? "neighbour";
  if (mode !== "neighbour") return { kind: mode };
  return { kind: "neighbour", mac: host.mac };
}

/** The booking's log: every line a remote command prints, tagged with the booking. */
export function bookingSink(logger: Logger, bookingId: string, step: string): OutputSink {
  return sinkTo(logger.child({ bookingId, step }));
}

function sinkTo(log: Logger): OutputSink {
  return (stream, line) => log.info({ stream }, line);
}

/**
 * Runs `command` on `host`, its output in `log` (a booking's, bookingId and step bound). A
 * command that may end with an accepted exit code other than 0 — a teardown's `virsh destroy` of
 * a domain a host fresh from imaging does not have — has its output held until it ends: exit 0,
 * the lines go to the log as any command's; an accepted failure is an expected answer, not an
 * error, so its lines ("error: failed to get domain …") go at debug level and one info line says
 * what it meant (the command's `expected`).
 */
export async function runLogged(
  host: HostSession,
  command: RemoteCommand,
  log: Logger,
): Promise<CommandResult> {
  const mayFail = (command.okExitCodes ?? [0]).some((code) => code !== 0);
  if (!mayFail) return host.run(command, sinkTo(log));
  const held: [stream: "stdout" | "stderr", line: string][] = [];
  let result: CommandResult;
  try {
    result = await host.run(command, (stream, line) => held.push([stream, line]));
  } catch (error) {
    for (const [stream, line] of held) log.info({ stream }, line);
    throw error;
  }
  if (result.exitCode === 0) {
    for (const [stream, line] of held) log.info({ stream }, line);
    return result;
  }
  for (const [stream, line] of held) log.debug({ stream, exitCode: result.exitCode }, line);
  const display = command.display ?? command.argv.join(" ");
  log.info(
    { exitCode: result.exitCode },
    command.expected ?? `\`${display}\` ended with exit code ${result.exitCode}, which it may`,
  );
  return result;
}

/**
 * Runs `work` in a login on the host, through the relay, at the address it answered on. The
 * login is passed on for steps whose commands depend on who logged in (sudo or not).
 */
export async function onHost<T>(
  rt: Runtime,
  hostName: string,
  work: (host: HostSession, login: HostLogin) => Promise<T>,
): Promise<T> {
  const host = await rt.store.getHost(hostName);
  if (!host?.address) {
    throw new HostUnreachableError(`${hostName} has no known address: it was never reached`);
  }
  const login = hostLogin(rt, host, host.address);
  return requireRelay(rt).session(async (session) => work(await session.host(login), login));
}
