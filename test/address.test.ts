import { describe, expect, it } from "vitest";
import {
  AddressOutsideLabError,
  CommandFailedError,
  NotFoundError,
  ProtocolError,
} from "../lib/errors";
import {
  AddressNotFoundError,
  type AddressQuery,
  type DhcpServerLogin,
  discoverAddress,
} from "../lib/lab/address";
import { silentLogger } from "../lib/log";
import type {
  CommandResult,
  HostLogin,
  HostSession,
  Relay,
  RelaySession,
  RemoteCommand,
} from "../lib/ports/relay";
import { Secret } from "../lib/secret";

const MAC = "aa:bb:cc:dd:ee:ff";
const LOG = "/var/log/syslog";

type Files = Record<string, string>;

/**
 * Runs the one command the address lookup may send — grep with fixed-string patterns over one
 * file — against in-memory files, the way grep would: matching lines, exit 1 for none, exit 2 for
 * a missing file. Anything else is refused, so a change of command shows up here.
 */
function fakeGrep(files: Files, command: RemoteCommand): CommandResult {
  const [program, ...args] = command.argv;
  if (program !== "grep") throw new Error(`unexpected program ${program}`);
  const patterns: string[] = [];
  let path: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "-e") patterns.push(args[++i] ?? "");
    else if (arg === "--") {
      path = args[i + 1];
      if (i + 2 !== args.length) throw new Error("one file expected after --");
      break;
    } else if (!["-a", "-i", "-F"].includes(arg ?? "")) throw new Error(`unexpected ${arg}`);
  }
  if (path === undefined) throw new Error("no file");
  const content = files[path];
  const result: CommandResult =
    content === undefined
      ? { exitCode: 2, stdout: "", stderr: `grep: ${path}: No such file or directory\n` }
      : (() => {
          const lines = content
            .split("\n")
            .filter((line) => patterns.some((p) => line.toLowerCase().includes(p.toLowerCase())));
          return {
            exitCode: lines.length > 0 ? 0 : 1,
            stdout: lines.map((line) => `${line}\n`).join(""),
            stderr: "",
          };
        })();
  if (!(command.okExitCodes ?? [0]).includes(result.exitCode)) {
    throw new CommandFailedError(`${command.argv.join(" ")} exited with ${result.exitCode}`);
  }
  return result;
}

interface Call {
  on: string;
  command: RemoteCommand;
}

/** The Relay port over in-memory machines: the relay's files, and each host's by name. */
function fakeRelay(machines: { relay: Files; hosts?: Record<string, Files> }) {
  const calls: Call[] = [];
  const logins: HostLogin[] = [];
  let sessions = 0;
  const session: RelaySession = {
    async onRelay(command) {
      calls.push({ on: "relay", command });
      return fakeGrep(machines.relay, command);
    },
    async host(login): Promise<HostSession> {
      logins.push(login);
      const files = machines.hosts?.[login.hostName];
      if (!files) throw new Error(`no route to ${login.hostName}`);
      return {
        hostKey: "SHA256:fake",
        async confirmIdentity() {},
        async run(command) {
          calls.push({ on: login.hostName, command });
          return fakeGrep(files, command);
        },
      };
    },
  };
  const relay: Relay = {
    async session(work) {
      sessions++;
      return work(session);
    },
  };
  return { relay, calls, logins, sessions: () => sessions };
}

const ack = (ip: string, mac = MAC) =>
  `Mar  3 10:00:02 dhcp1 dhcpd[812]: DHCPACK on ${ip} to ${mac} (pod1) via eth0`;

const log = (...lines: string[]) => `${lines.join("\n")}\n`;

const serverLogin: DhcpServerLogin = {
  hostName: "dhcp1",
  address: "10.0.0.2",
  port: 22,
  user: "laas",
  key: new Secret("not-a-real-key"),
  expectedHostKey: "SHA256:pinned",
  identity: { kind: "pinned" },
};

function query(overrides: Partial<AddressQuery> = {}): AddressQuery {
  return {
    hostName: "pod1",
    staticAddress: null,
    mac: MAC,
    dhcpLog: LOG,
    dhcpLogFormat: "syslog",
    dhcpServer: null,
    labSubnets: ["10.0.0.0/16"],
    ...overrides,
  };
}

describe("discoverAddress", () => {
  it("returns the inventory's static address without touching the relay", async () => {
    const fake = fakeRelay({ relay: { [LOG]: ack("10.0.0.5") } });
    const found = await discoverAddress(
      { relay: fake.relay, logger: silentLogger },
      query({ staticAddress: "10.0.8.10", mac: null }),
    );
    expect(found).toEqual({ address: "10.0.8.10", source: "inventory" });
    expect(fake.sessions()).toBe(0);
  });

  it("refuses a static address outside the lab's subnets, or one that is a name", async () => {
    const fake = fakeRelay({ relay: { [LOG]: ack("10.0.0.5") } });
    const lookup = (staticAddress: string) =>
      discoverAddress({ relay: fake.relay, logger: silentLogger }, query({ staticAddress }));
    await expect(lookup("192.168.1.10")).rejects.toThrow(
      /the inventory's address of pod1 "192\.168\.1\.10" is outside the lab's subnets \(10\.0\.0\.0\/16\); refusing to reach it/,
    );
    await expect(lookup("pod1.lab.example.org")).rejects.toBeInstanceOf(AddressOutsideLabError);
    expect(fake.sessions()).toBe(0);
  });

  it("refuses a leased address outside the lab's subnets", async () => {
    const fake = fakeRelay({ relay: { [LOG]: log(ack("10.0.0.5"), ack("192.0.2.66")) } });
    const lookup = discoverAddress({ relay: fake.relay, logger: silentLogger }, query());
    await expect(lookup).rejects.toBeInstanceOf(AddressOutsideLabError);
    await expect(lookup).rejects.toThrow(
      /the address leased to pod1 .* "192\.0\.2\.66" is outside/,
    );
  });

  it("reads the log on the relay when there is no DHCP server", async () => {
    const fake = fakeRelay({
      relay: {
        [LOG]: [ack("10.0.0.5"), ack("10.0.0.77", "11:22:33:44:55:66"), ack("10.0.0.6")].join("\n"),
      },
    });
    const found = await discoverAddress({ relay: fake.relay, logger: silentLogger }, query());
    expect(found).toEqual({ address: "10.0.0.6", source: "dhcp" });
    expect(fake.calls.map((call) => call.on)).toEqual(["relay"]);
    expect(fake.logins).toEqual([]);
  });

  it("reads the log on the DHCP server through the relay, with the given login", async () => {
    const fake = fakeRelay({
      relay: { [LOG]: ack("10.9.9.9") },
      hosts: { dhcp1: { [LOG]: ack("10.0.0.8") } },
    });
    const found = await discoverAddress(
      { relay: fake.relay, logger: silentLogger },
      query({ dhcpServer: serverLogin }),
    );
    expect(found).toEqual({ address: "10.0.0.8", source: "dhcp" });
    expect(fake.logins).toEqual([serverLogin]);
    expect(fake.logins[0]).toBe(serverLogin);
    expect(fake.calls.map((call) => call.on)).toEqual(["dhcp1"]);
  });

  it("finds the host from FOG's MAC whatever its case or separators", async () => {
    const fake = fakeRelay({ relay: { [LOG]: ack("10.0.0.5") } });
    const found = await discoverAddress(
      { relay: fake.relay, logger: silentLogger },
      query({ mac: "AA-BB-CC-DD-EE-FF" }),
    );
    expect(found.address).toBe("10.0.0.5");
  });

  it("fails with AddressNotFound and a clear message when the relay's log has no ACK", async () => {
    const fake = fakeRelay({
      relay: {
        [LOG]: `dhcpd[812]: DHCPOFFER on 10.0.0.5 to ${MAC} via eth0\n${ack("10.0.0.9", "11:22:33:44:55:66")}`,
      },
    });
    const failure = discoverAddress({ relay: fake.relay, logger: silentLogger }, query());
    await expect(failure).rejects.toBeInstanceOf(AddressNotFoundError);
    await expect(failure).rejects.toMatchObject({
      name: "AddressNotFound",
      message: `no DHCPACK for ${MAC} in ${LOG} on the relay`,
    });
  });

  it("names the DHCP server in the failure when the log was read there", async () => {
    const fake = fakeRelay({ relay: { [LOG]: ack("10.0.0.5") }, hosts: { dhcp1: { [LOG]: "" } } });
    await expect(
      discoverAddress(
        { relay: fake.relay, logger: silentLogger },
        query({ mac: "AA:BB:CC:DD:EE:FF", dhcpServer: serverLogin }),
      ),
    ).rejects.toMatchObject({
      name: "AddressNotFound",
      message: `no DHCPACK for ${MAC} in ${LOG} on dhcp1`,
    });
  });

  it("fails clearly, without reading any log, when FOG has no MAC for the host", async () => {
    const fake = fakeRelay({ relay: { [LOG]: ack("10.0.0.5") } });
    const failure = discoverAddress(
      { relay: fake.relay, logger: silentLogger },
      query({ mac: null }),
    );
    await expect(failure).rejects.toBeInstanceOf(NotFoundError);
    await expect(failure).rejects.toThrow(/pod1 has no primary MAC in FOG/);
    expect(fake.sessions()).toBe(0);
  });

  it("refuses a MAC from FOG that is not one, without reading any log", async () => {
    const fake = fakeRelay({ relay: { [LOG]: ack("10.0.0.5") } });
    await expect(
      discoverAddress({ relay: fake.relay, logger: silentLogger }, query({ mac: "-r /" })),
    ).rejects.toBeInstanceOf(ProtocolError);
    expect(fake.sessions()).toBe(0);
  });

  it("lets a missing log file fail as the command's failure", async () => {
    const fake = fakeRelay({ relay: {} });
    await expect(
      discoverAddress({ relay: fake.relay, logger: silentLogger }, query()),
    ).rejects.toBeInstanceOf(CommandFailedError);
  });

  it("sends only fixed words, the MAC and the log path, each as its own argument", async () => {
    const hostileLog = "/var/log/dhcp $(reboot); rm -rf / `id`";
    const fake = fakeRelay({
      relay: { [hostileLog]: ack("10.0.0.5") },
      hosts: { dhcp1: { [hostileLog]: ack("10.0.0.6") } },
    });
    const deps = { relay: fake.relay, logger: silentLogger };
    await discoverAddress(deps, query({ dhcpLog: hostileLog }));
    await discoverAddress(deps, query({ dhcpLog: hostileLog, dhcpServer: serverLogin }));

    expect(fake.calls).toHaveLength(2);
    for (const { command } of fake.calls) {
      expect(command.argv).toEqual([
        "grep",
        "-a",
        "-i",
        "-F",
        "-e",
        MAC,
        "-e",
        "aa-bb-cc-dd-ee-ff",
        "--",
        hostileLog,
      ]);
      expect(command.stdin).toBeUndefined();
      expect(command.okExitCodes).toEqual([0, 1]);
      expect(command.timeoutSeconds).toBe(30);
    }
  });
});
