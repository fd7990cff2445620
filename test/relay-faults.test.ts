/**
 * The SSH relay adapter when the network fails, against real OpenSSH: a TCP fault proxy
 * (helpers/tcp-fault-proxy.ts) sits between the adapter and the relay's sshd, another between
 * the relay and a lab host's sshd, and cuts, refuses or silences connections at chosen moments.
 * Each test pins one classification or one retry: a login failed on the network is retried; a
 * command whose connection was lost is an OutcomeUnknownError, run again only when idempotent;
 * a connection that went silent is told from a command that is slow; a host logged in to again
 * must show the key it showed first.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NO_RETRY, type RetryPolicy } from "../lib/adapters/retry";
import { CommandTimeoutError, type RelayConfig, SshRelay } from "../lib/adapters/ssh/ssh-relay";
import { AuthError, OutcomeUnknownError, TransientError } from "../lib/errors";
import type { HostLogin, OutputSink, RemoteCommand } from "../lib/ports/relay";
import { Secret } from "../lib/secret";
import { generateSshKey, type RunningSshd, type SshKeyPair, startSshd } from "../sim/sshd";
import { capturingLogger } from "./helpers/logs";
import { type FaultProxy, startFaultProxy } from "./helpers/tcp-fault-proxy";

/** Quick retries, so that a test takes a second, not the production half-minute. */
const FAST_RETRY: RetryPolicy = { retries: 2, minDelayMs: 50, maxDelayMs: 200, maxRetryMs: 10_000 };

let labKey: SshKeyPair;
let relaySshd: RunningSshd;
let hostSshd: RunningSshd;
/** Another machine, with another host key: what answers at a host's address after a swap. */
let strangerSshd: RunningSshd;
let relayProxy: FaultProxy;
let hostProxy: FaultProxy;
let markers: string;

beforeAll(async () => {
  labKey = await generateSshKey("lab");
  [relaySshd, hostSshd, strangerSshd] = await Promise.all([
    startSshd({ address: "127.0.0.1", authorizedKeys: [labKey.publicKey] }),
    startSshd({ address: "127.0.0.2", authorizedKeys: [labKey.publicKey] }),
    startSshd({ address: "127.0.0.4", authorizedKeys: [labKey.publicKey] }),
  ]);
  relayProxy = await startFaultProxy({ target: { host: relaySshd.address, port: relaySshd.port } });
  // The host's address as the relay sees it: the proxy, on an address of its own.
  hostProxy = await startFaultProxy({
    host: "127.0.0.3",
    target: { host: hostSshd.address, port: hostSshd.port },
  });
  markers = await mkdtemp(join(tmpdir(), "laas-relay-faults-"));
});

afterAll(async () => {
  await Promise.all([relayProxy?.close(), hostProxy?.close()]);
  await Promise.all([relaySshd?.stop(), hostSshd?.stop(), strangerSshd?.stop()]);
  if (markers) await rm(markers, { recursive: true, force: true });
});

afterEach(async () => {
  // Every test leaves the network as it found it.
  for (const proxy of [relayProxy, hostProxy]) {
    proxy.release();
    proxy.intercept(null);
    proxy.setDelay(0);
    await proxy.accept();
  }
  hostProxy.setTarget({ host: hostSshd.address, port: hostSshd.port });
});

function relay(retry: RetryPolicy = FAST_RETRY, overrides: Partial<RelayConfig> = {}) {
  const { logger, lines } = capturingLogger();
  const config: RelayConfig = {
    host: relayProxy.host,
    port: relayProxy.port,
    user: "root",
    key: new Secret(labKey.privateKey, "/etc/laas/relay_key"),
    hostKey: relaySshd.hostKeyFingerprint,
    timeoutSeconds: 5,
    hostIdentity: "trust-first-key",
    ...overrides,
  };
  return {
    relay: new SshRelay(config, { labSubnets: ["127.0.0.0/8"], names: [] }, logger, { retry }),
    logs: lines,
  };
}

function hostLogin(): HostLogin {
  return {
    hostName: "pod1-node1",
    address: hostProxy.host,
    port: hostProxy.port,
    user: "root",
    key: new Secret(labKey.privateKey, "/etc/laas/host_key"),
    expectedHostKey: null,
    identity: { kind: "trust-first-key" },
  };
}

let markerCount = 0;
/**
 * A command that counts its runs in a file of its own, says "started", waits, and prints how
 * many times it ran.
 */
function countedCommand(extra: Partial<RemoteCommand> = {}): {
  command: RemoteCommand;
  runs: () => Promise<number>;
} {
  markerCount += 1;
  const file = join(markers, `runs-${markerCount}`);
  return {
    command: {
      argv: ["sh", "-c", 'echo run >> "$1"; echo started; sleep 1; wc -l < "$1"', "sh", file],
      timeoutSeconds: 20,
      ...extra,
    },
    runs: async () =>
      (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean).length,
  };
}

/** A sink that does `fault` the first time the command says it started. */
function onStarted(fault: () => void): OutputSink {
  let done = false;
  return (_stream, line) => {
    if (line === "started" && !done) {
      done = true;
      fault();
    }
  };
}

function lastLine(text: string): string | undefined {
  return text.trim().split("\n").at(-1);
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

describe("SshRelay: logging in to the relay", () => {
  it("logs in once the relay accepts again after refusing for a moment", async () => {
    const refusing = relayProxy.refuseFor(600);
    const { relay: sshRelay, logs } = relay({ ...FAST_RETRY, retries: 5, minDelayMs: 200 });
    const result = await sshRelay.session((s) =>
      s.onRelay({ argv: ["echo", "in"], timeoutSeconds: 5 }),
    );
    await refusing;
    expect(result.stdout).toBe("in\n");
    expect(logs.join("\n")).toMatch(
      /waiting for the relay at \S+ \(connection refused\); attempt 2 of 6, none started after \d\d:\d\d:\d\d /,
    );
  });

  it("without retries, a refused login is a TransientError, not a final one", async () => {
    await relayProxy.refuse();
    const error = await failure(
      relay(NO_RETRY).relay.session((s) => s.onRelay({ argv: ["true"], timeoutSeconds: 5 })),
    );
    expect(error).toBeInstanceOf(TransientError);
    expect(error).not.toBeInstanceOf(OutcomeUnknownError);
    expect(error.message).toContain("connection refused");
  });
});

describe("SshRelay: a relay connection lost while a command runs", () => {
  for (const how of ["reset", "close"] as const) {
    it(`(${how}) fails the command with OutcomeUnknownError, and does not run it again`, async () => {
      const { command, runs } = countedCommand();
      const error = await failure(
        relay().relay.session((s) =>
          s.onRelay(
            command,
            onStarted(() => relayProxy.cutAll(how)),
          ),
        ),
      );
      expect(error).toBeInstanceOf(OutcomeUnknownError);
      // Still a TransientError by name: the workflows' Retry matches on it.
      expect(error.name).toBe("TransientError");
      expect(error.message).toContain("it may have run in part");
      expect(await runs()).toBe(1);
    });
  }

  it("runs an idempotent command again on a new login, and answers its second run", async () => {
    const { command, runs } = countedCommand({ idempotent: true });
    const { relay: sshRelay, logs } = relay();
    const accepted = relayProxy.accepted;
    const result = await sshRelay.session((s) =>
      s.onRelay(
        command,
        onStarted(() => relayProxy.cutAll()),
      ),
    );
    expect(lastLine(result.stdout)).toBe("2");
    expect(await runs()).toBe(2);
    expect(relayProxy.accepted - accepted).toBe(2);
    expect(logs.join("\n")).toContain("relay connection lost; logging in again");
  });

  it("logs in again for the next command when the connection was lost between commands", async () => {
    const { command, runs } = countedCommand();
    const result = await relay().relay.session(async (s) => {
      await s.onRelay({ argv: ["true"], timeoutSeconds: 5 });
      relayProxy.cutAll();
      // The loss is seen before the next command starts: nothing of it went over the dead link.
      await new Promise((resolve) => setTimeout(resolve, 200));
      return s.onRelay(command);
    });
    expect(lastLine(result.stdout)).toBe("1");
    expect(await runs()).toBe(1);
  });
});

describe("SshRelay: a command the relay will not start", () => {
  it("is a TransientError that says it did not run, not an unknown outcome", async () => {
    // One session channel per connection: a second command at the same time is refused.
    const strict = await startSshd({
      address: "127.0.0.1",
      authorizedKeys: [labKey.publicKey],
      extraConfig: ["MaxSessions 1"],
    });
    try {
      const { relay: sshRelay } = relay(NO_RETRY, {
        host: strict.address,
        port: strict.port,
        hostKey: strict.hostKeyFingerprint,
      });
      const error = await failure(
        sshRelay.session(async (s) => {
          const first = s.onRelay({ argv: ["sleep", "2"], timeoutSeconds: 10 });
          try {
            return await s.onRelay({ argv: ["true"], timeoutSeconds: 5 });
          } finally {
            await first;
          }
        }),
      );
      expect(error).toBeInstanceOf(TransientError);
      expect(error).not.toBeInstanceOf(OutcomeUnknownError);
      expect(error.message).toContain("it did not run");
    } finally {
      await strict.stop();
    }
  });
});

describe("SshRelay: a relay that goes silent", () => {
  it("is an OutcomeUnknownError at the command's deadline, not the command's failure", async () => {
    const { command } = countedCommand({ timeoutSeconds: 2 });
    const started = Date.now();
    const error = await failure(
      relay().relay.session((s) =>
        s.onRelay(
          command,
          onStarted(() => relayProxy.hold()),
        ),
      ),
    );
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error).not.toBeInstanceOf(CommandTimeoutError);
    expect(error.message).toContain("went silent");
    // The deadline, then the probe's own (at most the command's timeout).
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it("while a command that is merely slow, on a link that answers, is its CommandTimeout", async () => {
    const error = await failure(
      relay().relay.session((s) => s.onRelay({ argv: ["sleep", "30"], timeoutSeconds: 1 })),
    );
    expect(error).toBeInstanceOf(CommandTimeoutError);
  });
});

describe("SshRelay: a host connection lost while a command runs", () => {
  it("fails the command at once with OutcomeUnknownError, not at its deadline", async () => {
    const { command, runs } = countedCommand({ timeoutSeconds: 60 });
    const started = Date.now();
    const error = await failure(
      relay().relay.session(async (s) => {
        const host = await s.host(hostLogin());
        return host.run(
          command,
          onStarted(() => hostProxy.cutAll()),
        );
      }),
    );
    expect(error).toBeInstanceOf(OutcomeUnknownError);
    expect(error.message).toContain("pod1-node1");
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await runs()).toBe(1);
  });

  it("runs an idempotent command again over a new login to the host", async () => {
    const { command, runs } = countedCommand({ idempotent: true });
    const accepted = hostProxy.accepted;
    const result = await relay().relay.session(async (s) => {
      const host = await s.host(hostLogin());
      return host.run(
        command,
        onStarted(() => hostProxy.cutAll()),
      );
    });
    expect(lastLine(result.stdout)).toBe("2");
    expect(await runs()).toBe(2);
    expect(hostProxy.accepted - accepted).toBe(2);
  });

  it("refuses another machine answering at the address after the loss: the first key is required", async () => {
    const { command, runs } = countedCommand();
    const error = await failure(
      relay().relay.session(async (s) => {
        const host = await s.host(hostLogin());
        expect(host.hostKey).toBe(hostSshd.hostKeyFingerprint);
        await host.run({ argv: ["true"], timeoutSeconds: 5 });
        hostProxy.setTarget({ host: strangerSshd.address, port: strangerSshd.port });
        hostProxy.cutAll();
        await new Promise((resolve) => setTimeout(resolve, 200));
        return host.run(command);
      }),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain(`expected ${hostSshd.hostKeyFingerprint}`);
    expect(error.message).toContain(`presented ${strangerSshd.hostKeyFingerprint}`);
    expect(await runs()).toBe(0);
  });
});
