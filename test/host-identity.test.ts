/**
 * Who a host is, before any secret goes to it. First with real kernel parts: a real sshd as the
 * relay on this machine, a real sshd as the host inside a network namespace joined by a veth
 * pair, so the neighbour table the product reads is the kernel's. Then whole bookings on the
 * simulated lab, where another machine takes the booked host's address (another MAC on the wire)
 * or presents another key than the one recorded after imaging: the booking fails with the reason
 * and no root password, pod or hand-over goes anywhere.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SshRelay } from "../lib/adapters/ssh/ssh-relay";
import type { RelayConfig } from "../lib/config/types";
import type { Booking } from "../lib/domain/booking";
import { HostIdentityError } from "../lib/errors";
import { discoverAddress } from "../lib/lab/address";
import { silentLogger } from "../lib/log";
import type { HostLogin } from "../lib/ports/relay";
import { Secret } from "../lib/secret";
import { bookingAt } from "../sim/dashboard-sim";
import { generateSshKey, type RunningSshd, type SshKeyPair, startSshd } from "../sim/sshd";
import { type ListeningHandoverLab, listenOnHandoverLab } from "./helpers/handover-lab";
import { type LabSegment, startLabSegment } from "./helpers/netns";
import { waitFor } from "./helpers/wait";

const HOST_MAC = "02:00:00:5e:00:05";
const IMPOSTOR_MAC = "02:00:00:66:66:66";
const LEASED_MAC = "52:54:00:aa:bb:cc";

/** A login attempt sshd refuses (an unknown user, a key it does not know): it logs the user. */
async function failedLoginAs(sshd: RunningSshd, username: string): Promise<void> {
  const stranger = await generateSshKey("stranger");
  await new Promise<void>((resolve) => {
    const client = new ssh2.Client();
    client.on("error", () => resolve());
    client.on("ready", () => {
      client.end();
      resolve();
    });
    client.connect({
      host: sshd.address,
      port: sshd.port,
      username,
      privateKey: stranger.privateKey,
      readyTimeout: 10_000,
    });
  });
}

describe("the relay's neighbour table, on real network namespaces", () => {
  let key: SshKeyPair;
  let segment: LabSegment;
  let relaySshd: RunningSshd;
  let hostSshd: RunningSshd;

  beforeAll(async () => {
    key = await generateSshKey("identity");
    segment = await startLabSegment(`10.213.${1 + Math.floor(Math.random() * 250)}`, HOST_MAC);
    [relaySshd, hostSshd] = await Promise.all([
      startSshd({ address: "127.0.0.1", authorizedKeys: [key.publicKey] }),
      startSshd({
        address: segment.hostAddress,
        netns: segment.netns,
        authorizedKeys: [key.publicKey],
      }),
    ]);
  });

  afterAll(async () => {
    await Promise.allSettled([relaySshd?.stop(), hostSshd?.stop()]);
    await segment?.close();
  });

  function relay(): SshRelay {
    const config: RelayConfig = {
      host: relaySshd.address,
      port: relaySshd.port,
      user: "root",
      key: new Secret(key.privateKey, "relay_key"),
      hostKey: relaySshd.hostKeyFingerprint,
      timeoutSeconds: 10,
      hostIdentity: "neighbour",
    };
    return new SshRelay(config, { labSubnets: [segment.subnet, "127.0.0.0/8"], names: [] });
  }

  function login(overrides: Partial<HostLogin> = {}): HostLogin {
    return {
      hostName: "pod1",
      address: segment.hostAddress,
      port: hostSshd.port,
      user: "root",
      key: new Secret(key.privateKey, "host_key"),
      expectedHostKey: null,
      identity: { kind: "neighbour", mac: HOST_MAC },
      ...overrides,
    };
  }

  const accepted = () => (hostSshd.log().match(/Accepted publickey/g) ?? []).length;

  it("accepts a first key when the relay's kernel maps the address to FOG's MAC", async () => {
    const hostKey = await relay().session(async (session) => {
      const host = await session.host(login());
      await host.run({ argv: ["true"], timeoutSeconds: 10 });
      return host.hostKey;
    });
    expect(hostKey).toBe(hostSshd.hostKeyFingerprint);
  });

  it("refuses a first key from a machine with another MAC, before it sees a login", async () => {
    const before = accepted();
    const refused = relay().session((session) =>
      session.host(login({ identity: { kind: "neighbour", mac: IMPOSTOR_MAC } })),
    );
    await expect(refused).rejects.toBeInstanceOf(HostIdentityError);
    await expect(refused).rejects.toThrow(
      new RegExp(`has MAC ${HOST_MAC} in the relay's neighbour table, not pod1's ${IMPOSTOR_MAC}`),
    );
    expect(accepted()).toBe(before);
  });

  it("refuses a first key at an address the relay has no neighbour entry for", async () => {
    // The relay's own sshd on loopback: reachable, but no link-layer neighbour proves anything.
    const refused = relay().session((session) =>
      session.host(login({ address: relaySshd.address, port: relaySshd.port })),
    );
    await expect(refused).rejects.toThrow(/the relay has no neighbour entry for 127\.0\.0\.1/);
  });

  it("finds out, before a secret is sent, that another machine took the address", async () => {
    await relay().session(async (session) => {
      const host = await session.host(login({ expectedHostKey: hostSshd.hostKeyFingerprint }));
      await host.confirmIdentity();
      // Another MAC answers at the address now; the relay's kernel learns it at the next packet.
      await segment.setHostMac(IMPOSTOR_MAC);
      await segment.flushNeighbour();
      await host.run({ argv: ["true"], timeoutSeconds: 10 });
      await expect(host.confirmIdentity()).rejects.toThrow(
        new RegExp(
          `has MAC ${IMPOSTOR_MAC} in the relay's neighbour table, not pod1's ${HOST_MAC}`,
        ),
      );
    });
    await segment.setHostMac(HOST_MAC);
    await segment.flushNeighbour();
  });

  it("takes no lease from a line sshd wrote about a login as the user 'DHCPACK on … to <mac>'", async () => {
    const forgedUser = `DHCPACK on 10.0.0.97 to ${LEASED_MAC.replaceAll(":", "-")}`;
    await failedLoginAs(relaySshd, forgedUser);
    const sshdLines = await waitFor("sshd to log the invalid user", () => {
      const lines = relaySshd
        .log()
        .split(/\r?\n/)
        .filter((l) => l.includes(forgedUser));
      return lines.length > 0 ? lines : undefined;
    });
    expect(sshdLines[0]).toMatch(/^Invalid user DHCPACK on 10\.0\.0\.97 to /);
    // The system log as rsyslog writes it: its header, then the program's tag and message.
    const syslog = [
      `Dec  1 11:58:02 relay dnsmasq-dhcp[321]: DHCPACK(eth1) 10.0.0.5 ${LEASED_MAC} pod1`,
      ...sshdLines.map((line) => `Dec  1 12:00:00 relay sshd[${relaySshd.pid}]: ${line}`),
    ].join("\n");
    const dir = await mkdtemp(join(tmpdir(), "laas-syslog-"));
    try {
      await writeFile(join(dir, "syslog"), `${syslog}\n`);
      const found = await discoverAddress(
        { relay: relay(), logger: silentLogger },
        {
          hostName: "pod1",
          staticAddress: null,
          mac: LEASED_MAC,
          dhcpLog: join(dir, "syslog"),
          dhcpLogFormat: "syslog",
          dhcpServer: null,
          labSubnets: ["10.0.0.0/24"],
        },
      );
      expect(found).toEqual({ address: "10.0.0.5", source: "dhcp" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a first key of a host FOG has no MAC for, yet logs in on its pinned key", async () => {
    const before = accepted();
    const noMac = { identity: { kind: "neighbour", mac: null } } as const;
    await expect(relay().session((session) => session.host(login(noMac)))).rejects.toThrow(
      /FOG has no MAC for pod1, so the relay's neighbour table cannot show/,
    );
    expect(accepted()).toBe(before);
    await relay().session(async (session) => {
      const host = await session.host(
        login({ ...noMac, expectedHostKey: hostSshd.hostKeyFingerprint }),
      );
      await host.confirmIdentity();
      await host.run({ argv: ["true"], timeoutSeconds: 10 });
    });
  });

  it("refuses a first key outright when keys must be pinned", async () => {
    const before = accepted();
    const refused = relay().session((session) =>
      session.host(login({ identity: { kind: "pinned" } })),
    );
    await expect(refused).rejects.toThrow(
      /pod1 has no pinned host key, and relay\.host_identity: pinned accepts no other/,
    );
    expect(accepted()).toBe(before);
  });
});

describe("bookings whose host is not the booked one, on the simulated lab", () => {
  let h: ListeningHandoverLab;

  beforeAll(async () => {
    h = await listenOnHandoverLab({ name: "laas-identity" });
  }, 120_000);

  afterAll(async () => h?.close());

  function book(id: number, resourceId: string): void {
    const now = Date.now();
    h.lab.dashboard.addBooking(
      bookingAt({
        id,
        resource_id: Number(resourceId),
        start: new Date(now - 1_000),
        end: new Date(now + 10 * 60_000),
        installer_name: "Fuel",
        scenario_name: "os-nosdn-nofeature-ha",
        purpose: "identity test",
        user: 1,
      }),
    );
  }

  function failed(id: string): Promise<Booking> {
    return waitFor(
      `booking ${id} to fail`,
      async () => {
        const booking = await h.embedded.runtime.store.getBooking(id);
        if (booking?.state === "ready") throw new Error(`booking ${id} became ready`);
        return booking?.state === "failed" ? booking : undefined;
      },
      90_000,
    );
  }

  const ran = (hostName: string, program: string) =>
    h.lab.hostCommands(hostName).some((argv) => argv.join(" ").includes(program));

  it("fails each booking with the reason, and sends no password, pod or hand-over", async () => {
    const [first, second, third] = h.lab.inventory;
    if (!first || !second || !third) throw new Error("the lab needs three hosts");
    // 1: another machine holds the address from the end of imaging on: no first login at all.
    h.lab.onDeployed((name) => {
      if (name === first.name) h.lab.wire.set(first.address, IMPOSTOR_MAC);
    });
    h.lab.onInstallerDone((name) => {
      // 2: another machine takes the address once the pod is built, before access is set.
      if (name === second.name) h.lab.wire.set(second.address, IMPOSTOR_MAC);
      // 3: the machine answering presents another key than the one recorded after imaging.
      if (name === third.name) h.lab.hosts.regenerateHostKey(third.name);
    });
    book(801, first.resourceId);
    book(802, second.resourceId);
    book(803, third.resourceId);
    await h.listener.pollOnce();

    const [one, two, three] = await Promise.all([failed("801"), failed("802"), failed("803")]);
    expect(one.failure).toMatch(
      new RegExp(`has MAC ${IMPOSTOR_MAC} in the relay's neighbour table, not ${first.name}'s`),
    );
    expect(two.failure).toMatch(
      new RegExp(`has MAC ${IMPOSTOR_MAC} in the relay's neighbour table, not ${second.name}'s`),
    );
    expect(three.failure).toMatch(/Host key of .* does not match/);

    expect(ran(first.name, "virsh")).toBe(false);
    for (const host of [first, second, third]) {
      expect(ran(host.name, "chpasswd")).toBe(false);
    }
    // The pod was built on the second and third hosts: the guards stood between it and access.
    expect(ran(second.name, "virsh")).toBe(true);
    expect(h.smtp.messages.filter((m) => /is ready \(booking 80[123]\)/.test(m.subject))).toEqual(
      [],
    );
  }, 180_000);
});
