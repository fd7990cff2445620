import { createServer, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import ssh2 from "ssh2";
import { afterEach, describe, expect, it } from "vitest";
import {
  fingerprintOfPublicKey,
  fingerprintSha256,
  normalizeFingerprint,
  sameFingerprint,
} from "../lib/adapters/ssh/host-key";
import { RelayPowerControl } from "../lib/adapters/ssh/relay-power";
import { RebootFailedError, SshPowerControl } from "../lib/adapters/ssh/ssh-power";
import { CommandTimeoutError } from "../lib/adapters/ssh/ssh-relay";
import type { PowerConfig } from "../lib/config/types";
import {
  AuthError,
  CommandFailedError,
  ConfigError,
  OutcomeUnknownError,
  TransientError,
} from "../lib/errors";
import { silentLogger } from "../lib/log";
import type { PowerTarget } from "../lib/ports/power";
import type { CommandResult, HostSession, Relay, RelaySession } from "../lib/ports/relay";
import { Secret } from "../lib/secret";
import {
  type BareMetalLab,
  type BareMetalLabOptions,
  generateClientKey,
  startBareMetalLab,
} from "../sim/bare-metal";

const LAB_KEY = generateClientKey();
/** Every line of the private key's body, so a leak of any part of it is caught. */
const KEY_FRAGMENTS = LAB_KEY.privateKey
  .split("\n")
  .filter((line) => line.length > 0 && !line.startsWith("-----"));

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

interface Lab {
  lab: BareMetalLab;
  booted: string[];
  /** Resolves with the host name at the next network boot. */
  nextBoot(): Promise<string>;
}

async function startLab(options: Partial<BareMetalLabOptions> = {}): Promise<Lab> {
  const booted: string[] = [];
  let wake: ((name: string) => void) | null = null;
  const lab = await startBareMetalLab({
    hosts: [
      { name: "pod1", address: "127.0.1.21" },
      { name: "pod2", address: "127.0.1.22" },
    ],
    authorizedKey: LAB_KEY.publicKey,
    onReboot: (name) => {
      booted.push(name);
      wake?.(name);
    },
    ...options,
  });
  open.push(lab);
  return {
    lab,
    booted,
    nextBoot: () =>
      new Promise((resolve) => {
        wake = resolve;
      }),
  };
}

function power(overrides: Partial<PowerConfig> = {}): PowerConfig {
  return {
    type: "ssh",
    user: "root",
    port: 22,
    key: new Secret(LAB_KEY.privateKey, "/etc/laas/power_key"),
    hostKey: null,
    timeoutSeconds: 5,
    ipmi: null,
    ...overrides,
  };
}

function target(
  lab: BareMetalLab,
  name: string,
  address: string,
  overrides: Partial<PowerConfig> = {},
  knownHostKey: string | null = null,
): PowerTarget {
  return {
    hostName: name,
    address,
    power: power({ port: lab.port, ...overrides }),
    knownHostKey,
    // A direct login (no relay) has no neighbour table; the key alone is checked.
    identity: { kind: "trust-first-key" },
  };
}

/** Runs the reboot expecting a failure, and checks that the failure does not carry the key. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => {
      throw new Error("expected the reboot to fail");
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(Error);
  const text = `${(error as Error).message}\n${(error as Error).stack ?? ""}`;
  for (const fragment of KEY_FRAGMENTS) expect(text).not.toContain(fragment);
  return error as Error;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("host key fingerprints", () => {
  it("match what ssh-keygen -lf prints", () => {
    // Vector produced by OpenSSH's ssh-keygen.
    const line =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHDZneZDwmenK1wcqYS4hkcr3LJJWwGVHFrqihSh1R3I vector";
    expect(fingerprintOfPublicKey(line)).toBe("SHA256:j7o2RSvdtroJ2qJrHsMTSExXSGQja2lFxaHlOdZo5Ak");
    const blob = Buffer.from(line.split(" ")[1] ?? "", "base64");
    expect(fingerprintSha256(blob)).toBe("SHA256:j7o2RSvdtroJ2qJrHsMTSExXSGQja2lFxaHlOdZo5Ak");
  });

  it("normalizes padding and prefix case, and rejects other forms", () => {
    const fp = "SHA256:j7o2RSvdtroJ2qJrHsMTSExXSGQja2lFxaHlOdZo5Ak";
    expect(normalizeFingerprint(` sha256:${fp.slice(7)}= `)).toBe(fp);
    expect(normalizeFingerprint("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48")).toBeNull();
    expect(normalizeFingerprint("j7o2RSvdtroJ2qJrHsMTSExXSGQja2lFxaHlOdZo5Ak")).toBeNull();
    expect(sameFingerprint(fp, `${fp}=`)).toBe(true);
    expect(sameFingerprint(fp, fp.replace("j7o2", "j7o3"))).toBe(false);
    expect(sameFingerprint("junk", "junk")).toBe(false);
  });
});

describe("SshPowerControl against the simulated hosts", () => {
  it("reboots over SSH, answers the host's key, and the host network-boots", async () => {
    const { lab, booted, nextBoot } = await startLab();
    const boot = nextBoot();
    const result = await new SshPowerControl().reboot(target(lab, "pod1", "127.0.1.21"));
    expect(result.hostKey).toBe(lab.hostKeyFingerprint("pod1"));
    expect(await boot).toBe("pod1");
    expect(booted).toEqual(["pod1"]);
    expect(lab.reboots.map((record) => record.host)).toEqual(["pod1"]);
    // Each host has its own key.
    expect(lab.hostKeyFingerprint("pod2")).not.toBe(lab.hostKeyFingerprint("pod1"));
  });

  it("accepts the host when its key matches the pinned host_key or the recorded key", async () => {
    const { lab } = await startLab();
    const control = new SshPowerControl();
    const pinned = lab.hostKeyFingerprint("pod1");
    await expect(
      control.reboot(target(lab, "pod1", "127.0.1.21", { hostKey: pinned })),
    ).resolves.toEqual({ hostKey: pinned });
    const known = lab.hostKeyFingerprint("pod2");
    await expect(control.reboot(target(lab, "pod2", "127.0.1.22", {}, known))).resolves.toEqual({
      hostKey: known,
    });
    expect(lab.reboots.map((record) => record.host)).toEqual(["pod1", "pod2"]);
  });

  it("refuses a host whose key differs from the pinned host_key, before logging in", async () => {
    const { lab, booted } = await startLab();
    const wrong = lab.hostKeyFingerprint("pod2");
    const error = await failure(
      new SshPowerControl().reboot(target(lab, "pod1", "127.0.1.21", { hostKey: wrong })),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain("pod1");
    expect(error.message).toContain("127.0.1.21");
    expect(error.message).toContain(`expected ${wrong}`);
    expect(error.message).toContain(`presented ${lab.hostKeyFingerprint("pod1")}`);
    await sleep(100);
    expect(lab.reboots).toEqual([]);
    expect(booted).toEqual([]);
  });

  it("refuses a host whose key differs from the one recorded when first seen", async () => {
    const { lab } = await startLab();
    const recorded = lab.hostKeyFingerprint("pod1");
    // What a reinstall behind our back (or an impostor on the address) looks like.
    const fresh = lab.regenerateHostKey("pod1");
    expect(fresh).not.toBe(recorded);
    const error = await failure(
      new SshPowerControl().reboot(target(lab, "pod1", "127.0.1.21", {}, recorded)),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain("first seen");
    expect(error.message).toContain(`expected ${recorded}`);
    expect(error.message).toContain(`presented ${fresh}`);
    expect(lab.reboots).toEqual([]);
  });

  it("fails closed on a host_key that is not a fingerprint", async () => {
    const { lab } = await startLab();
    const error = await failure(
      new SshPowerControl().reboot(target(lab, "pod1", "127.0.1.21", { hostKey: "yes" })),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(lab.reboots).toEqual([]);
  });

  it("reports a login with a key the host does not accept as AuthError", async () => {
    const { lab } = await startLab();
    const stranger = generateClientKey();
    const error = await failure(
      new SshPowerControl().reboot(
        target(lab, "pod1", "127.0.1.21", { key: new Secret(stranger.privateKey) }),
      ),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain("pod1");
    for (const fragment of stranger.privateKey.split("\n").filter((l) => !l.startsWith("---"))) {
      if (fragment) expect(error.message).not.toContain(fragment);
    }
    expect(lab.reboots).toEqual([]);
  });

  it("reports a login as a user the host does not accept as AuthError", async () => {
    const { lab } = await startLab();
    const error = await failure(
      new SshPowerControl().reboot(target(lab, "pod1", "127.0.1.21", { user: "laas" })),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain("laas");
  });

  it("reports an unusable private key as ConfigError without quoting it", async () => {
    const { lab } = await startLab();
    const broken = LAB_KEY.privateKey.replace("OPENSSH PRIVATE KEY", "OPENSSH PRIVATE KAY");
    const error = await failure(
      new SshPowerControl().reboot(
        target(lab, "pod1", "127.0.1.21", { key: new Secret(broken, "/etc/laas/power_key") }),
      ),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("/etc/laas/power_key");
  });

  it("reports connection refused as TransientError naming host:port", async () => {
    const port = await freePort("127.0.1.29");
    const lab = { port } as BareMetalLab;
    const error = await failure(new SshPowerControl().reboot(target(lab, "pod9", "127.0.1.29")));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`127.0.1.29:${port}`);
    expect(error.message).toContain("refused");
  });

  it("reports a host that accepts TCP but never speaks SSH as TransientError", async () => {
    const sockets = new Set<Socket>();
    // Reads and ignores whatever arrives, like a service that is not sshd.
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.1.28", resolve));
    open.push({
      close: () => {
        for (const socket of sockets) socket.destroy();
        return closeServer(silent);
      },
    });
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const error = await failure(
      new SshPowerControl().reboot(
        target({ port } as BareMetalLab, "pod8", "127.0.1.28", { timeoutSeconds: 1 }),
      ),
    );
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`127.0.1.28:${port}`);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("reports a host that accepts TCP and drops it before SSH (still booting) as TransientError", async () => {
    const dropping = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dropping.listen(0, "127.0.1.27", resolve));
    open.push({ close: () => closeServer(dropping) });
    const port = (dropping.address() as { port: number }).port;
    const error = await failure(
      new SshPowerControl().reboot(target({ port } as BareMetalLab, "pod7", "127.0.1.27")),
    );
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`127.0.1.27:${port}`);
  });

  it("refuses connections while the host is down, and answers again once it is up", async () => {
    const { lab, nextBoot } = await startLab({ bootDelayMs: 50, upDelayMs: 300 });
    const control = new SshPowerControl();
    const boot = nextBoot();
    await control.reboot(target(lab, "pod1", "127.0.1.21"));
    expect(lab.isUp("pod1")).toBe(false);
    const error = await failure(control.reboot(target(lab, "pod1", "127.0.1.21")));
    expect(error).toBeInstanceOf(TransientError);
    await boot;
    await lab.whenUp("pod1");
    // The other host was never affected.
    expect(lab.isUp("pod2")).toBe(true);
    await expect(control.reboot(target(lab, "pod1", "127.0.1.21"))).resolves.toEqual({
      hostKey: lab.hostKeyFingerprint("pod1"),
    });
    expect(lab.reboots.map((record) => record.host)).toEqual(["pod1", "pod1"]);
  });

  it("counts a connection dropped right after `reboot` as success", async () => {
    const { lab, nextBoot } = await startLab({
      hosts: [{ name: "pod3", address: "127.0.1.23", dropOnReboot: true }],
    });
    const boot = nextBoot();
    await expect(new SshPowerControl().reboot(target(lab, "pod3", "127.0.1.23"))).resolves.toEqual({
      hostKey: lab.hostKeyFingerprint("pod3"),
    });
    expect(await boot).toBe("pod3");
  });

  it("reports a non-zero exit status of `reboot` with the status and stderr's tail", async () => {
    const noise = "x".repeat(2_000);
    const { lab, booted } = await startLab({
      hosts: [
        {
          name: "pod4",
          address: "127.0.1.24",
          rebootFails: {
            exitCode: 1,
            stderr: `${noise}\nFailed to set wall message, ignoring: Interactive authentication required.\nCall to Reboot failed: Access denied\n`,
          },
        },
      ],
    });
    const error = await failure(new SshPowerControl().reboot(target(lab, "pod4", "127.0.1.24")));
    expect(error).toBeInstanceOf(RebootFailedError);
    expect(error.message).toContain("exit status 1");
    expect(error.message).toContain("Call to Reboot failed: Access denied");
    expect(error.message).not.toContain(noise);
    expect(error.message).toContain("pod4");
    await sleep(100);
    expect(booted).toEqual([]);
    expect(lab.isUp("pod4")).toBe(true);
  });

  it("never writes the private key to its logs", async () => {
    const { lab } = await startLab();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = pino({ level: "trace" }, sink);
    const control = new SshPowerControl({ logger });
    await control.reboot(target(lab, "pod1", "127.0.1.21"));
    await failure(
      control.reboot(target(lab, "pod2", "127.0.1.22", { hostKey: `SHA256:${"A".repeat(43)}` })),
    );
    const text = lines.join("");
    expect(text).toContain("ssh reboot sent");
    for (const fragment of KEY_FRAGMENTS) expect(text).not.toContain(fragment);
  });
});

describe("RelayPowerControl: what counts as a reboot under way", () => {
  /** A relay whose host login works and whose `reboot` ends as `outcome` says. */
  function relayWhere(outcome: () => Promise<CommandResult>): { relay: Relay; ran: string[][] } {
    const ran: string[][] = [];
    const host: HostSession = {
      hostKey: "SHA256:recorded",
      confirmIdentity: async () => undefined,
      run: async (command) => {
        ran.push(command.argv);
        return outcome();
      },
    };
    const session: RelaySession = {
      onRelay: async () => ({ exitCode: 0, stdout: "", stderr: "" }),
      host: async () => host,
    };
    return { relay: { session: (work) => work(session) }, ran };
  }

  function powerTarget(): PowerTarget {
    return {
      hostName: "pod1",
      address: "10.0.0.5",
      power: power(),
      knownHostKey: null,
      identity: { kind: "trust-first-key" },
    };
  }

  const underWay: Array<[string, () => Error]> = [
    ["the connection lost under it", () => new OutcomeUnknownError("connection closed")],
    ["still running at its deadline", () => new CommandTimeoutError("did not finish")],
    ["ended by the shutdown's SIGTERM", () => new CommandFailedError("failed with signal TERM")],
  ];
  for (const [what, error] of underWay) {
    it(`${what}: the reboot is under way, not retried`, async () => {
      const { relay, ran } = relayWhere(() => Promise.reject(error()));
      await expect(
        new RelayPowerControl(relay, silentLogger).reboot(powerTarget()),
      ).resolves.toEqual({ hostKey: "SHA256:recorded" });
      expect(ran).toEqual([["reboot"]]);
    });
  }

  const notSent: Array<[string, () => Error]> = [
    ["could not be started (nothing ran)", () => new TransientError("Could not start `reboot`")],
    ["answered failure", () => new CommandFailedError("failed with exit code 1")],
  ];
  for (const [what, error] of notSent) {
    it(`${what}: thrown, so the caller may send it again`, async () => {
      const thrown = error();
      const { relay } = relayWhere(() => Promise.reject(thrown));
      await expect(new RelayPowerControl(relay, silentLogger).reboot(powerTarget())).rejects.toBe(
        thrown,
      );
    });
  }
});

describe("simulated bare-metal host", () => {
  it("answers other commands with 127 and command not found", async () => {
    const { lab } = await startLab();
    const client = new ssh2.Client();
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      client.on("error", reject);
      client.on("ready", () => {
        client.exec("uptime", (error, stream) => {
          if (error) return reject(error);
          let stderr = "";
          let code: number | null = null;
          stream.resume();
          stream.stderr.on("data", (chunk: Buffer) => {
            stderr += chunk.toString();
          });
          stream.on("exit", (exit: number | null) => {
            code = exit;
          });
          stream.on("close", () => resolve({ code, stderr }));
        });
      });
      client.connect({
        host: "127.0.1.22",
        port: lab.port,
        username: "root",
        privateKey: LAB_KEY.privateKey,
      });
    });
    client.end();
    expect(result.code).toBe(127);
    expect(result.stderr).toContain("uptime: command not found");
    expect(lab.reboots).toEqual([]);
  });
});

async function freePort(address: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as { port: number }).port;
  await closeServer(server);
  return port;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
