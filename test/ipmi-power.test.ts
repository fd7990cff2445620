/**
 * IPMI power against a real BMC: OpenIPMI's ipmi_sim on loopback, driven by Debian's ipmitool
 * run on the relay — a real sshd on 127.0.0.1 — through SshRelay, as in the lab. The simulator's
 * chassis-control hook records each power and boot-device change the BMC was asked for.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BmcUnansweredError, IpmiPowerControl } from "../lib/adapters/ipmi/ipmi-power";
import {
  acknowledged,
  BOOTDEV_PXE,
  classifyFailure,
  POWER_CYCLE,
  POWER_ON,
  parsePowerStatus,
} from "../lib/adapters/ipmi/ipmitool";
import { PowerByType } from "../lib/adapters/power-by-type";
import { type ForwardTargets, SshRelay } from "../lib/adapters/ssh/ssh-relay";
import type { IpmiConfig, PowerConfig } from "../lib/config/types";
import { AuthError, ConfigError, errorMessage, TransientError } from "../lib/errors";
import type { Logger } from "../lib/log";
import type { PowerControl, PowerTarget } from "../lib/ports/power";
import type { Relay, RelaySession, RemoteCommand } from "../lib/ports/relay";
import { Secret } from "../lib/secret";
import { freeUdpPort, type RunningIpmiSim, startIpmiSim } from "../sim/ipmi";
import { generateSshKey, type RunningSshd, type SshKeyPair, startSshd } from "../sim/sshd";
import { capturingLogger } from "./helpers/logs";

const USER = "laas-admin";
/** Shell characters: it goes to ipmitool on stdin, never through a shell line. */
const PASSWORD = "$(id)'w0rd&|x*";

let key: SshKeyPair;
let relaySshd: RunningSshd;
let bmc: RunningIpmiSim;

beforeAll(async () => {
  key = await generateSshKey("relay");
  [relaySshd, bmc] = await Promise.all([
    startSshd({ address: "127.0.0.1", authorizedKeys: [key.publicKey] }),
    startIpmiSim({ user: USER, password: PASSWORD }),
  ]);
}, 900_000);

afterAll(async () => {
  await Promise.all([relaySshd?.stop(), bmc?.stop()]);
});

afterEach(async () => {
  await bmc.setStuck(false);
});

const LOOPBACK: ForwardTargets = { labSubnets: ["127.0.0.0/8"], names: [] };

/** The relay, and every command it was given (to show where the password went). */
function relay(logger: Logger): { relay: Relay; commands: RemoteCommand[] } {
  const commands: RemoteCommand[] = [];
  const real = new SshRelay(
    {
      host: relaySshd.address,
      port: relaySshd.port,
      user: "root",
      key: new Secret(key.privateKey, "/etc/laas/relay_key"),
      hostKey: relaySshd.hostKeyFingerprint,
      timeoutSeconds: 10,
      hostIdentity: "trust-first-key",
    },
    LOOPBACK,
    logger,
  );
  const recording: Relay = {
    session: (work) =>
      real.session((session) => {
        const seen: RelaySession = {
          onRelay: (command, sink) => {
            commands.push(command);
            return session.onRelay(command, sink);
          },
          host: (login) => session.host(login),
        };
        return work(seen);
      }),
  };
  return { relay: recording, commands };
}

function ipmi(overrides: Partial<IpmiConfig> = {}): IpmiConfig {
  return {
    address: bmc.address,
    port: bmc.port,
    user: USER,
    password: new Secret(PASSWORD, "/etc/laas/bmc-password"),
    cipherSuite: 3,
    efiBoot: false,
    timeoutSeconds: 20,
    ...overrides,
  };
}

function target(bmcSettings: IpmiConfig): PowerTarget {
  const power: PowerConfig = {
    type: "ipmi",
    user: "root",
    port: 22,
    key: new Secret(key.privateKey, "/etc/laas/power_key"),
    hostKey: null,
    timeoutSeconds: 10,
    ipmi: bmcSettings,
  };
  return {
    hostName: "pod1-node1",
    address: "127.0.3.1",
    power,
    knownHostKey: null,
    identity: { kind: "trust-first-key" },
  };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`rejected with a non-error: ${String(error)}`);
  }
  throw new Error("expected a failure, but it succeeded");
}

/** Events the hook recorded from now on. */
async function eventsAfter(action: () => Promise<unknown>): Promise<string[]> {
  const before = (await bmc.events()).length;
  await action();
  return (await bmc.events()).slice(before);
}

describe("IpmiPowerControl against ipmi_sim, through the relay", () => {
  it("a host that is off: next boot PXE, then power on, confirmed on", async () => {
    await bmc.setPower(false);
    const { logger, lines } = capturingLogger();
    const { relay: viaRelay, commands } = relay(logger);
    let result: unknown;
    const events = await eventsAfter(async () => {
      result = await new IpmiPowerControl(viaRelay, logger).reboot(target(ipmi()));
    });
    expect(result).toEqual({ hostKey: null });
    expect(events).toEqual(["boot pxe", "power 1"]);
    expect(await bmc.powerOn()).toBe(true);
    expect(await bmc.bootFlags()).toMatch(/Force PXE/);
    expect(await bmc.bootFlags()).toMatch(/BIOS PC Compatible \(legacy\) boot/);
    // The password went on stdin only: never an argument, never logged.
    expect(commands.length).toBeGreaterThanOrEqual(4);
    for (const command of commands) {
      expect(command.argv[0]).toBe("ipmitool");
      expect(command.argv.join(" ")).not.toContain(PASSWORD);
      expect(command.argv).toEqual(expect.arrayContaining(["-f", "/dev/stdin", "-C", "3"]));
      expect(command.stdin).toBe(`${PASSWORD}\n`);
    }
    expect(lines.join("\n")).not.toContain(PASSWORD);
    expect(lines.join("\n")).toContain("ipmi: powered on");
  });

  it("a host that is on: power cycle, and the power read until it is on again", async () => {
    await bmc.setPower(true);
    const { logger } = capturingLogger();
    const { relay: viaRelay, commands } = relay(logger);
    const events = await eventsAfter(() =>
      new IpmiPowerControl(viaRelay, logger).reboot(target(ipmi())),
    );
    // ipmi_sim's cycle is off, then on a second later: a single read after it would see "off".
    expect(events).toEqual(["boot pxe", "power 0", "power 1"]);
    expect(await bmc.powerOn()).toBe(true);
    const cycle = commands.findIndex((c) => c.argv.slice(-3).join(" ") === "chassis power cycle");
    expect(cycle).toBeGreaterThan(0);
    expect(commands[cycle]?.idempotent).toBe(false);
    const statusReads = commands
      .slice(cycle + 1)
      .filter((c) => c.argv.slice(-3).join(" ") === "chassis power status");
    expect(statusReads.length).toBeGreaterThanOrEqual(1);
  });

  it("efi_boot asks the BMC for a UEFI PXE boot (options=efiboot)", async () => {
    await bmc.setPower(false);
    const { logger } = capturingLogger();
    const { relay: viaRelay, commands } = relay(logger);
    const events = await eventsAfter(() =>
      new IpmiPowerControl(viaRelay, logger).reboot(target(ipmi({ efiBoot: true }))),
    );
    expect(commands[0]?.argv.slice(-4)).toEqual(["chassis", "bootdev", "pxe", "options=efiboot"]);
    // ipmi_sim keeps the device of the boot flags, not their BIOS/EFI bit: the BMC accepted it.
    expect(events).toEqual(["boot pxe", "power 1"]);
    expect(await bmc.bootFlags()).toMatch(/Force PXE/);
  });

  it("a wrong password is an AuthError at once, naming the host and the BMC, not the password", async () => {
    await bmc.setPower(true);
    const { logger, lines } = capturingLogger();
    const { relay: viaRelay } = relay(logger);
    const wrong = "not-the-password";
    const started = Date.now();
    let error: Error | null = null;
    const events = await eventsAfter(async () => {
      error = await failure(
        new IpmiPowerControl(viaRelay, logger).reboot(
          target(ipmi({ password: new Secret(wrong, "/etc/laas/bmc-password") })),
        ),
      );
    });
    expect(error).toBeInstanceOf(AuthError);
    const message = errorMessage(error);
    expect(message).toContain("pod1-node1");
    expect(message).toContain(`${bmc.address}:${bmc.port}`);
    expect(message).toMatch(/wrong password/);
    expect(message).toContain("/etc/laas/bmc-password");
    expect(message).not.toContain(wrong);
    expect(lines.join("\n")).not.toContain(wrong);
    // Not tried again until the deadline (20 s): refused is final.
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(events).toEqual([]);
  });

  it("an unknown user is an AuthError too", async () => {
    const { logger } = capturingLogger();
    const { relay: viaRelay } = relay(logger);
    const error = await failure(
      new IpmiPowerControl(viaRelay, logger).reboot(target(ipmi({ user: "nobody" }))),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(errorMessage(error)).toMatch(/refused the user .*unauthorized name/);
  });

  it("a cipher suite the BMC does not offer is a ConfigError naming the setting", async () => {
    const { logger } = capturingLogger();
    const { relay: viaRelay } = relay(logger);
    const error = await failure(
      new IpmiPowerControl(viaRelay, logger).reboot(target(ipmi({ cipherSuite: 17 }))),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(errorMessage(error)).toMatch(/cipher suite 17.*cipher_suite/);
  });

  it("a BMC that does not answer fails by its deadline as BmcUnansweredError naming it", async () => {
    const silentPort = await freeUdpPort();
    const { logger } = capturingLogger();
    const { relay: viaRelay, commands } = relay(logger);
    const started = Date.now();
    const error = await failure(
      new IpmiPowerControl(viaRelay, logger).reboot(
        target(ipmi({ port: silentPort, timeoutSeconds: 6 })),
      ),
    );
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(BmcUnansweredError);
    expect(errorMessage(error)).toContain(`BMC of pod1-node1 (127.0.0.1:${silentPort})`);
    expect(errorMessage(error)).toMatch(/did not answer within 6s/);
    // Asked more than once before giving up, and given up by the deadline (plus one attempt).
    expect(commands.length).toBeGreaterThanOrEqual(2);
    // (An attempt takes about 2 s: the last one starts no later than a second before the end.)
    expect(elapsed).toBeGreaterThanOrEqual(4_500);
    expect(elapsed).toBeLessThan(11_000);
  });

  it("a power that never reads on fails by the deadline, retryable, naming the BMC", async () => {
    await bmc.setPower(false);
    await bmc.setStuck(true);
    const { logger } = capturingLogger();
    const { relay: viaRelay } = relay(logger);
    const started = Date.now();
    let error: Error | null = null;
    const events = await eventsAfter(async () => {
      error = await failure(
        new IpmiPowerControl(viaRelay, logger).reboot(target(ipmi({ timeoutSeconds: 4 }))),
      );
    });
    expect(error).toBeInstanceOf(TransientError);
    expect(error).not.toBeInstanceOf(BmcUnansweredError);
    expect(errorMessage(error)).toMatch(
      new RegExp(
        `pod1-node1 \\(BMC ${bmc.address}:${bmc.port}\\) did not read on within 4s.*last read: off`,
      ),
    );
    expect(events).toEqual(["boot pxe", "power 1"]);
    expect(Date.now() - started).toBeLessThan(9_000);
  });
});

describe("PowerByType", () => {
  const calls: string[] = [];
  const fake = (name: string): PowerControl => ({
    reboot: async () => {
      calls.push(name);
      return { hostKey: name === "ssh" ? "SHA256:x" : null };
    },
  });

  it("sends each host to its power type's adapter; ipmi without a relay is refused", async () => {
    const ipmiTarget = target(ipmi());
    const sshTarget: PowerTarget = {
      ...ipmiTarget,
      power: { ...ipmiTarget.power, type: "ssh", ipmi: null },
    };
    const both = new PowerByType({ ssh: fake("ssh"), ipmi: fake("ipmi") });
    await expect(both.reboot(sshTarget)).resolves.toEqual({ hostKey: "SHA256:x" });
    await expect(both.reboot(ipmiTarget)).resolves.toEqual({ hostKey: null });
    expect(calls).toEqual(["ssh", "ipmi"]);
    const sshOnly = new PowerByType({ ssh: fake("ssh"), ipmi: null });
    await expect(sshOnly.reboot(ipmiTarget)).rejects.toThrow(ConfigError);
  });
});

describe("ipmitool output, read strictly", () => {
  it("takes a command as done only on ipmitool's own line for it", () => {
    expect(acknowledged(BOOTDEV_PXE, "Set Boot Device to pxe\n")).toBe(true);
    expect(acknowledged(BOOTDEV_PXE, "Set Boot Device to disk\n")).toBe(false);
    expect(acknowledged(POWER_ON, "Chassis Power Control: Up/On\n")).toBe(true);
    expect(acknowledged(POWER_ON, "Chassis Power Control: Cycle\n")).toBe(false);
    expect(acknowledged(POWER_CYCLE, "Chassis Power Control: Cycle\n")).toBe(true);
    expect(acknowledged(POWER_CYCLE, "")).toBe(false);
  });

  it("a power setting without its BMC is a ConfigError before anything runs", async () => {
    const { logger } = capturingLogger();
    const { relay: viaRelay, commands } = relay(logger);
    const bare = target(ipmi());
    const error = await failure(
      new IpmiPowerControl(viaRelay, logger).reboot({
        ...bare,
        power: { ...bare.power, ipmi: null },
      }),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(commands).toEqual([]);
  });

  it.each([
    ["Chassis Power is on\n", "on"],
    ["Chassis Power is off\n", "off"],
    ["Chassis Power is on\nChassis Power is off\n", null],
    ["Chassis Power is unknown\n", null],
    ["", null],
    ["Chassis Power is onward\n", null],
  ])("power status %j is %j", (stdout, state) => {
    expect(parsePowerStatus(stdout)).toBe(state);
  });

  it.each([
    ["> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session", "auth"],
    ["RAKP 2 message indicates an error : unauthorized name\nError: Unable to establish", "auth"],
    ["Error in open session response message : invalid authentication algorithm", "cipher"],
    [
      "Get Auth Capabilities error\nError: Unable to establish IPMI v2 / RMCP+ session",
      "unreachable",
    ],
    ["Address lookup for bmc.invalid failed\nCould not open socket!", "unreachable"],
    [
      "Set Chassis Power Control to Cycle failed: Command not supported in present state",
      "refused",
    ],
  ])("stderr %j is %j", (stderr, kind) => {
    expect(classifyFailure(stderr).kind).toBe(kind);
  });
});
