/**
 * A piece of lab network for tests, made of real kernel parts: a network namespace standing for
 * a lab host, joined to this machine (standing for the relay) by a veth pair. The relay side has
 * `<prefix>.1/24`, the host side `<prefix>.5/24` with a MAC the test chooses, so the relay's
 * neighbour table is the kernel's own (`ip neigh`). Needs root, as the test machines run.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface LabSegment {
  /** The namespace the host side lives in (for `ip netns exec`, sshd's `netns`). */
  readonly netns: string;
  /** The relay's address on the segment. */
  readonly relayAddress: string;
  /** The host's address on the segment. */
  readonly hostAddress: string;
  readonly subnet: string;
  /** Gives the host side another MAC: another machine now answers at the address. */
  setHostMac(mac: string): Promise<void>;
  /** Forgets what the relay's kernel learned about the host's address. */
  flushNeighbour(): Promise<void>;
  close(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  await run("ip", args);
}

/** `prefix` is the first three octets, e.g. "10.213.7". */
export async function startLabSegment(prefix: string, hostMac: string): Promise<LabSegment> {
  const tag = randomBytes(3).toString("hex");
  const netns = `laas-host-${tag}`;
  const relaySide = `vr-${tag}`;
  const hostSide = `vh-${tag}`;
  const hostAddress = `${prefix}.5`;
  await ip("netns", "add", netns);
  try {
    await ip("link", "add", relaySide, "type", "veth", "peer", "name", hostSide);
    await ip("link", "set", hostSide, "netns", netns);
    await ip("addr", "add", `${prefix}.1/24`, "dev", relaySide);
    await ip("link", "set", relaySide, "up");
    await ip("netns", "exec", netns, "ip", "link", "set", "lo", "up");
    await ip("netns", "exec", netns, "ip", "link", "set", hostSide, "address", hostMac);
    await ip("netns", "exec", netns, "ip", "addr", "add", `${hostAddress}/24`, "dev", hostSide);
    await ip("netns", "exec", netns, "ip", "link", "set", hostSide, "up");
  } catch (error) {
    await ip("netns", "del", netns).catch(() => undefined);
    await ip("link", "del", relaySide).catch(() => undefined);
    throw error;
  }
  return {
    netns,
    relayAddress: `${prefix}.1`,
    hostAddress,
    subnet: `${prefix}.0/24`,
    async setHostMac(mac) {
      await ip("netns", "exec", netns, "ip", "link", "set", hostSide, "address", mac);
    },
    async flushNeighbour() {
      await ip("neigh", "flush", "to", hostAddress);
    },
    async close() {
      await ip("netns", "del", netns).catch(() => undefined);
      // Deleting the namespace takes the host side along; its peer goes with it, eventually.
      await ip("link", "del", relaySide).catch(() => undefined);
    },
  };
}
