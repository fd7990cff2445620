/**
 * The simulated lab itself, through the product's own relay adapter (SshRelay over ssh2) and the
 * config the lab writes: the relay's pinned key, its strict command line, the lease lookup after
 * a FOG deploy, logins forwarded to the hosts, the virtual pod built on a host and the detached
 * installer. The product's workflows rely on these behaving like the real lab.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FogClient } from "../lib/adapters/fog/fog-client";
import { RelayPowerControl } from "../lib/adapters/ssh/relay-power";
import { quoteShellCommand } from "../lib/adapters/ssh/shell-quote";
import { SshRelay } from "../lib/adapters/ssh/ssh-relay";
import { inventoryHostByName, loadPharosConfig, powerFor } from "../lib/config/load";
import type { InstallerConfig, PharosConfig, RelayConfig } from "../lib/config/types";
import {
  AddressOutsideLabError,
  AuthError,
  CommandFailedError,
  TransientError,
} from "../lib/errors";
import { fuelInstaller } from "../lib/installers/fuel";
import { discoverAddress } from "../lib/lab/address";
import { findLeaseAddress, leaseCommand } from "../lib/lab/dhcp";
import { silentLogger } from "../lib/log";
import { macsBySource } from "../lib/pod/domiflist";
import { buildPlan, removalPlan } from "../lib/pod/plan";
import type { HostLogin, HostSession } from "../lib/ports/relay";
import { Secret } from "../lib/secret";
import { generateClientKey } from "../sim/bare-metal";
import { parseQuotedCommand } from "../sim/host-shell";
import { repoRoot, type SimulatedLab, type SimulatedLabHost, startSimulatedLab } from "../sim/lab";
import { waitFor } from "./helpers/wait";

/** The detached launch as the installer step sends it (lib/lifecycle/installer.ts). */
const DETACHED =
  'exec >"$0.log" 2>&1 </dev/null; "$@"; echo "$?" >"$0.status.part"; mv -f -- "$0.status.part" "$0.status"';

let workDir: string;
let lab: SimulatedLab;
let config: PharosConfig;
let fuel: InstallerConfig;
let relayConfig: RelayConfig;
let relay: SshRelay;
/** Inventory names of the shipped conf/: two found by DHCP, the last with a static address. */
let failingHost: string;

beforeAll(async () => {
  const shipped = await loadPharosConfig(join(repoRoot, "conf", "pharos.yaml"));
  failingHost = shipped.inventory.hosts.at(-1)!.name;
  workDir = await mkdtemp(join(tmpdir(), "laas-sim-lab-"));
  lab = await startSimulatedLab({
    workDir,
    timeScale: 400,
    installerMs: 300,
    installerFails: [failingHost],
  });
  config = await loadPharosConfig(lab.configPath);
  fuel = config.defaultConfigs.get("Fuel")!;
  relayConfig = config.relay!;
  relay = new SshRelay(relayConfig, { labSubnets: config.labSubnets, names: [] });
});

afterAll(async () => {
  await lab?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function labHost(index: number): SimulatedLabHost {
  return lab.inventory[index]!;
}

/** The login the product uses for a host (power settings), at the host's simulated address. */
function login(host: SimulatedLabHost, expectedHostKey: string | null): HostLogin {
  const power = powerFor(config, inventoryHostByName(config.inventory, host.name)!)!;
  return {
    hostName: host.name,
    address: host.address,
    port: power.port,
    user: power.user,
    key: power.key,
    expectedHostKey,
    identity: { kind: "neighbour", mac: host.mac },
  };
}

function onHost<T>(host: SimulatedLabHost, work: (session: HostSession) => Promise<T>) {
  return relay.session(async (session) => work(await session.host(login(host, null))));
}

async function imaged(host: SimulatedLabHost): Promise<void> {
  lab.hosts.reimage(host.name);
  await lab.hosts.whenUp(host.name);
}

/** Runs a line on the relay as is, without the product's quoting. */
function rawExec(line: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on("error", reject);
    client.on("ready", () => {
      client.exec(line, (error, channel) => {
        if (error) {
          client.end();
          reject(error);
          return;
        }
        let code: number | null = null;
        channel.on("exit", (exitCode: number | null) => {
          code = exitCode;
        });
        channel.on("close", () => {
          client.end();
          resolve(code);
        });
        channel.resume();
        channel.stderr.resume();
        channel.end();
      });
    });
    client.connect({
      host: relayConfig.host,
      port: relayConfig.port,
      username: relayConfig.user,
      privateKey: relayConfig.key.reveal(),
      hostVerifier: () => true,
    });
  });
}

describe("the config the lab writes", () => {
  it("points the relay, the DHCP log and the pod settings at the simulators", () => {
    expect(relayConfig).toMatchObject({
      host: "127.0.0.1",
      port: lab.relay.port,
      hostKey: lab.relay.hostKeyFingerprint,
    });
    for (const installer of config.defaultConfigs.values()) {
      expect(installer.dhcpLog).toBe(lab.relay.dhcpLogPath);
      expect(installer.dhcpServer).toBeNull();
      expect(installer.pod).toEqual({
        bootTimeoutSeconds: 60,
        installTimeoutSeconds: 120,
        remoteDir: "/var/lib/laas",
        libvirtUri: "qemu:///system",
        diskSizeGB: 10,
      });
    }
    const withAddress = config.inventory.hosts.filter((host) => host.address !== null);
    expect(withAddress.map((host) => host.name)).toEqual([failingHost]);
    expect(lab.inventory.filter((host) => host.staticAddress).map((host) => host.name)).toEqual([
      failingHost,
    ]);
  });
});

describe("the relay", () => {
  it("is reached with its pinned key, and refused when it presents another", async () => {
    const result = await relay.session((session) =>
      session.onRelay({ argv: ["true"], timeoutSeconds: 10 }),
    );
    expect(result.exitCode).toBe(0);
    expect(lab.relay.commands.at(-1)).toEqual({ argv: ["true"], line: "'true'", exitCode: 0 });

    const impostor = new SshRelay(
      { ...relayConfig, hostKey: lab.hosts.hostKeyFingerprint(labHost(0).name) },
      { labSubnets: config.labSubnets, names: [] },
    );
    const refused = impostor.session((session) =>
      session.onRelay({ argv: ["true"], timeoutSeconds: 10 }),
    );
    await expect(refused).rejects.toBeInstanceOf(AuthError);
    await expect(refused).rejects.toThrow(/does not match the relay's pinned host_key/);
  });

  it("lets in only its user's key", async () => {
    const stranger = new SshRelay(
      { ...relayConfig, key: new Secret(generateClientKey().privateKey, "stranger") },
      { labSubnets: config.labSubnets, names: [] },
    );
    await expect(
      stranger.session((session) => session.onRelay({ argv: ["true"], timeoutSeconds: 10 })),
    ).rejects.toBeInstanceOf(AuthError);
  });

  it("runs only lines quoted word by word, and only the commands it has", async () => {
    expect(await rawExec("'true'")).toBe(0);
    expect(await rawExec("true")).toBe(127);
    expect(await rawExec("'true' ; 'rm'")).toBe(127);
    await expect(
      relay.session((session) =>
        session.onRelay({ argv: ["sh", "-c", "true"], timeoutSeconds: 10 }),
      ),
    ).rejects.toThrow(/exit code 127[\s\S]*sh: command not found/);
  });

  it("greps only the DHCP lease file it holds, and says so like grep for any other file", async () => {
    const mac = "02:00:00:00:00:42";
    const missing = await relay.session((session) =>
      session.onRelay({ ...leaseCommand("/var/log/messages", mac, "syslog"), okExitCodes: [2] }),
    );
    expect(missing.stderr).toBe("grep: /var/log/messages: No such file or directory\n");
    const none = await relay.session((session) =>
      session.onRelay(leaseCommand(lab.relay.dhcpLogPath, "02:00:00:00:00:99", "dnsmasq-leases")),
    );
    expect(none).toEqual({ exitCode: 1, stdout: "", stderr: "" });
    const expiresAt = new Date(Date.now() + 3600_000);
    lab.relay.setLease({ mac, address: "10.9.9.9", hostName: "stray", expiresAt });
    const found = await relay.session((session) =>
      session.onRelay(leaseCommand(lab.relay.dhcpLogPath, mac, "dnsmasq-leases")),
    );
    expect(found.stdout).toBe(
      `${Math.floor(expiresAt.getTime() / 1000)} ${mac} 10.9.9.9 stray 01:${mac}\n`,
    );
  });
});

describe("parseQuotedCommand", () => {
  it("reads back exactly the argv the product quoted", () => {
    const argv = ["sh", "-c", `it's "$HOME" \`x\` ; \\ ~ *`, "", "'", "a b\nc"];
    expect(parseQuotedCommand(quoteShellCommand(argv))).toEqual(argv);
  });

  it("refuses anything else", () => {
    for (const line of [
      "true",
      "'true' ",
      " 'true'",
      "'true'  'x'",
      "'a'b",
      "'open",
      "",
      "'a'\\'",
    ]) {
      expect(parseQuotedCommand(line), line).toBeNull();
    }
  });
});

describe("hosts through the relay", () => {
  it("forwards a login to a host on loopback, and nowhere else", async () => {
    const host = labHost(1);
    const expected = lab.hosts.hostKeyFingerprint(host.name);
    const hostKey = await relay.session(async (session) => {
      const opened = await session.host(login(host, expected));
      await opened.run({ argv: ["true"], timeoutSeconds: 10 });
      return opened.hostKey;
    });
    expect(hostKey).toBe(expected);
    expect(lab.relay.forwards).toContainEqual({
      destIP: host.address,
      destPort: lab.hosts.port,
      connected: true,
    });
    // The product asks for no forwarding outside the lab's subnets at all…
    const forwardsBefore = lab.relay.forwards.length;
    const outside = relay.session((session) =>
      session.host({ ...login(host, expected), address: "192.0.2.1", port: 22 }),
    );
    await expect(outside).rejects.toBeInstanceOf(AddressOutsideLabError);
    await expect(outside).rejects.toThrow(
      /"192\.0\.2\.1" is outside the lab's subnets \(127\.0\.0\.0\/8\)/,
    );
    expect(lab.relay.forwards).toHaveLength(forwardsBefore);
    // …and the simulated relay, asked anyway, refuses as a relay limited to its lab would.
    const anywhere = new SshRelay(relayConfig, { labSubnets: ["0.0.0.0/0"], names: [] });
    await expect(
      anywhere.session((session) =>
        session.host({ ...login(host, expected), address: "192.0.2.1", port: 22 }),
      ),
    ).rejects.toBeInstanceOf(TransientError);
    expect(lab.relay.forwards.at(-1)).toEqual({
      destIP: "192.0.2.1",
      destPort: 22,
      connected: false,
    });
  });

  it("a host that was never imaged knows only reboot and true", async () => {
    const host = labHost(1);
    expect(lab.hosts.isImaged(host.name)).toBe(false);
    const result = await onHost(host, (session) =>
      session.run({
        argv: ["virsh", "-c", "qemu:///system", "list"],
        timeoutSeconds: 10,
        okExitCodes: [127],
      }),
    );
    expect(result.stderr).toBe("bash: virsh: command not found\n");
  });

  it("after a FOG deploy, the host has a new key and a fresh lease the lookup finds", async () => {
    const host = labHost(0);
    expect(host.staticAddress).toBe(false);
    const lookup = () =>
      discoverAddress(
        { relay, logger: silentLogger },
        {
          hostName: host.name,
          staticAddress: null,
          mac: host.mac,
          dhcpLog: fuel.dhcpLog,
          dhcpLogFormat: fuel.dhcpLogFormat,
          dhcpServer: null,
          labSubnets: config.labSubnets,
        },
      );
    // Before: only yesterday's lease, for an address nothing answers on.
    const stale = await lookup();
    expect(stale.address).not.toBe(host.address);

    const oldKey = lab.hosts.hostKeyFingerprint(host.name);
    const fog = new FogClient(fuel.fog, silentLogger);
    const fogHost = await fog.findHost(host.name);
    await fog.deploy(fogHost.id, fuel.fog.imageId, "sim-lab test");
    const power = powerFor(config, inventoryHostByName(config.inventory, host.name)!)!;
    const rebooted = await new RelayPowerControl(relay, silentLogger).reboot({
      hostName: host.name,
      address: host.address,
      power,
      knownHostKey: null,
      identity: { kind: "neighbour", mac: host.mac },
    });
    expect(rebooted.hostKey).toBe(oldKey);

    await waitFor("the deploy to complete", () =>
      lab.hosts.isImaged(host.name) ? true : undefined,
    );
    await lab.hosts.whenUp(host.name);
    // dnsmasq keeps one lease per client: the boot of the new system renewed it.
    const grep = await relay.session((session) =>
      session.onRelay(leaseCommand(fuel.dhcpLog, host.mac, fuel.dhcpLogFormat)),
    );
    expect(grep.stdout).toMatch(
      new RegExp(
        `^\\d+ ${host.mac} ${host.address.replaceAll(".", "\\.")} ${host.name} 01:${host.mac}\n$`,
      ),
    );
    expect(findLeaseAddress(grep.stdout, host.mac, fuel.dhcpLogFormat)).toBe(host.address);
    expect(await lookup()).toEqual({ address: host.address, source: "dhcp" });

    const newKey = await onHost(host, async (session) => {
      await session.run({ argv: ["true"], timeoutSeconds: 10 });
      return session.hostKey;
    });
    expect(newKey).toBe(lab.hosts.hostKeyFingerprint(host.name));
    expect(newKey).not.toBe(oldKey);
    await expect(
      relay.session((session) => session.host(login(host, oldKey))),
    ).rejects.toBeInstanceOf(AuthError);
  });
});

describe("the virtual pod on an imaged host", () => {
  it("runs the pod plan to its end, and domiflist gives each interface's MAC", async () => {
    const host = labHost(1);
    await imaged(host);
    const plan = buildPlan(fuel, {
      masterDomain: fuelInstaller.masterDomain(fuel.hypervisor.vms),
      diskSizeGB: fuel.pod.diskSizeGB,
      connectUri: fuel.pod.libvirtUri,
    });
    const build = () =>
      onHost(host, async (session) => {
        const macs: Record<string, Record<string, string>> = {};
        for (const command of plan) {
          const result = await session.run(command);
          if (command.argv.includes("domiflist")) {
            macs[command.argv.at(-1)!] = macsBySource(result.stdout);
          }
        }
        return macs;
      });
    const before = lab.hostCommands(host.name).length;
    const macs = await build();
    expect(lab.hostCommands(host.name).slice(before)).toEqual(plan.map((c) => c.argv));
    for (const domain of fuel.hypervisor.vms.domains) {
      const ofDomain = macs[domain.name]!;
      expect(Object.keys(ofDomain)).toEqual(domain.interfaces.map((i) => i.name));
      for (const mac of Object.values(ofDomain)) expect(mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    }
    const shell = lab.hosts.shell(host.name);
    expect(shell.domains.get("jumphost")?.running).toBe(true);
    expect(shell.domains.get("node1")?.running).toBe(false);
    expect([...shell.networks.values()].every((n) => n.active && n.autostart)).toBe(true);
    expect(shell.files.get("/var/lib/libvirt/images/jumphost.qcow2")).toBe(
      "qcow2 image, 10737418240 bytes\n",
    );

    // Built again over the running pod: the teardown clears it, libvirt gives new MACs.
    const again = await build();
    expect(again.jumphost?.admin).not.toBe(macs.jumphost?.admin);

    await onHost(host, async (session) => {
      for (const command of removalPlan(fuel, { connectUri: fuel.pod.libvirtUri })) {
        await session.run(command);
      }
    });
    expect(shell.domains.size).toBe(0);
    expect(shell.networks.size).toBe(0);
  });

  it("answers virsh errors as virsh does", async () => {
    const host = labHost(1);
    const results = await onHost(host, async (session) => {
      const virsh = (...args: string[]) =>
        session.run({
          argv: ["virsh", "-c", "qemu:///system", ...args],
          timeoutSeconds: 10,
          okExitCodes: [0, 1],
        });
      return [
        await virsh("destroy", "--domain", "nope"),
        await virsh("net-start", "--network", "nope"),
        await virsh("domiflist"),
        await virsh("frobnicate"),
      ];
    });
    expect(results.map((r) => [r.exitCode, r.stderr])).toEqual([
      [1, "error: failed to get domain 'nope'\n"],
      [
        1,
        "error: failed to get network 'nope'\nerror: Network not found: no network with matching name 'nope'\n",
      ],
      [1, "error: command 'domiflist' requires <domain> option\n"],
      [1, "error: unknown command: 'frobnicate'\n"],
    ]);
  });
});

describe("the detached installer", () => {
  async function launch(host: SimulatedLabHost): Promise<{ status: string; log: string }> {
    await imaged(host);
    const remoteDir = posix.join(fuel.pod.remoteDir, "booking-7");
    const steps = fuelInstaller.steps({
      scenario: "os-nosdn-nofeature-ha",
      hostName: host.name,
      domains: fuel.hypervisor.vms,
      networks: fuel.hypervisor.networks,
      remoteDir,
    });
    const last = steps.at(-1)!;
    if (last.kind !== "run") throw new Error("the fuel installer ends with a command");
    const base = posix.join(remoteDir, "deploy");
    const status = {
      argv: ["cat", "--", `${base}.status`],
      timeoutSeconds: 10,
      okExitCodes: [0, 1],
    };
    await onHost(host, async (session) => {
      for (const step of steps.slice(0, -1)) {
        if (step.kind === "run") await session.run(step.command);
        else
          await session.run({
            argv: ["cp", "/dev/stdin", step.destination],
            stdin: await readFile(step.source, "utf8"),
            timeoutSeconds: 10,
          });
      }
      await session.run({ argv: ["rm", "-f", "--", `${base}.status`], timeoutSeconds: 10 });
      await session.run({
        argv: ["setsid", "-f", "sh", "-c", DETACHED, base, ...last.command.argv],
        timeoutSeconds: 10,
      });
      const early = await session.run(status);
      expect(early.exitCode).toBe(1);
      expect(early.stderr).toContain("No such file or directory");
    });
    const shell = lab.hosts.shell(host.name);
    expect(shell.detached.at(-1)).toMatchObject({ base, argv: last.command.argv });
    for (const step of steps) {
      if (step.kind !== "copy") continue;
      expect(shell.files.get(step.destination)).toBe(await readFile(step.source, "utf8"));
    }

    return waitFor("the installer's status", () =>
      onHost(host, async (session) => {
        const read = await session.run(status);
        if (read.exitCode !== 0) return undefined;
        const log = await session.run({
          argv: ["tail", "-n", "20", "--", `${base}.log`],
          timeoutSeconds: 10,
        });
        return { status: read.stdout, log: log.stdout };
      }),
    );
  }

  it("writes the log and, once it ends, status 0", async () => {
    const host = labHost(0);
    const { status, log } = await launch(host);
    expect(status).toBe("0\n");
    expect(log.split("\n")[0]).toBe(`[deploy] deploying os-nosdn-nofeature-ha on ${host.name}`);
    expect(log).toContain("finished successfully");
  });

  it("ends with status 1 and an error in its log on the host told to fail", async () => {
    const host = lab.inventory.find((h) => h.name === failingHost)!;
    const { status, log } = await launch(host);
    expect(status).toBe("1\n");
    expect(log).toMatch(/ERROR: deployment failed/);
  });

  it("fails the command, not the lab, when a step is wrong", async () => {
    const host = labHost(0);
    await expect(
      onHost(host, (session) =>
        session.run({ argv: ["cp", "/dev/stdin", "/nowhere/x"], stdin: "x", timeoutSeconds: 10 }),
      ),
    ).rejects.toThrow(CommandFailedError);
  });
});
