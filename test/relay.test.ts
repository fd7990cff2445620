/**
 * The SSH relay adapter against real OpenSSH: one sshd on 127.0.0.1 plays the lab's relay,
 * another on 127.0.0.2 a lab host, reachable for the adapter only through the relay's
 * forwarding. Keys and fingerprints come from ssh-keygen.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CommandTimeoutError,
  type ForwardTargets,
  type RelayConfig,
  SshRelay,
} from "../lib/adapters/ssh/ssh-relay";
import {
  AuthError,
  CommandFailedError,
  ConfigError,
  errorMessage,
  TransientError,
} from "../lib/errors";
import { silentLogger } from "../lib/log";
import type { HostLogin, OutputSink, RelaySession } from "../lib/ports/relay";
import { Secret } from "../lib/secret";
import {
  freePort,
  generateSshKey,
  type RunningSshd,
  type SshKeyPair,
  startSshd,
} from "../sim/sshd";
import { capturingLogger } from "./helpers/logs";
import { waitFor } from "./helpers/wait";

let labKey: SshKeyPair;
let strangerKey: SshKeyPair;
let relaySshd: RunningSshd;
let targetSshd: RunningSshd;
let markers: string;

beforeAll(async () => {
  [labKey, strangerKey] = await Promise.all([generateSshKey("lab"), generateSshKey("stranger")]);
  [relaySshd, targetSshd] = await Promise.all([
    startSshd({ address: "127.0.0.1", authorizedKeys: [labKey.publicKey] }),
    startSshd({ address: "127.0.0.2", authorizedKeys: [labKey.publicKey] }),
  ]);
  markers = await mkdtemp(join(tmpdir(), "laas-relay-markers-"));
});

afterAll(async () => {
  await Promise.all([relaySshd?.stop(), targetSshd?.stop()]);
  if (markers) await rm(markers, { recursive: true, force: true });
});

function relayConfig(overrides: Partial<RelayConfig> = {}): RelayConfig {
  return {
    host: relaySshd.address,
    port: relaySshd.port,
    user: "root",
    key: new Secret(labKey.privateKey, "/etc/laas/relay_key"),
    hostKey: relaySshd.hostKeyFingerprint,
    timeoutSeconds: 10,
    hostIdentity: "trust-first-key",
    ...overrides,
  };
}

/** The test hosts answer on loopback, where there is no neighbour table to read. */
const LOOPBACK: ForwardTargets = { labSubnets: ["127.0.0.0/8"], names: [] };

function targetLogin(overrides: Partial<HostLogin> = {}): HostLogin {
  return {
    hostName: "pod1-node1",
    address: targetSshd.address,
    port: targetSshd.port,
    user: "root",
    key: new Secret(labKey.privateKey, "/etc/laas/host_key"),
    expectedHostKey: null,
    identity: { kind: "trust-first-key" },
    ...overrides,
  };
}

/** Runs `work` in one relay session, with a relay logging to memory. */
async function withRelay<T>(
  work: (session: RelaySession) => Promise<T>,
  overrides: Partial<RelayConfig> = {},
): Promise<{ result: T; logs: string[] }> {
  const { logger, lines } = capturingLogger();
  const result = await new SshRelay(relayConfig(overrides), LOOPBACK, logger).session(work);
  return { result, logs: lines };
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

function collectingSink(): { sink: OutputSink; lines: [string, string][] } {
  const lines: [string, string][] = [];
  return { sink: (stream, line) => lines.push([stream, line]), lines };
}

/** Logins sshd accepted so far: each one logs "Accepted publickey for …". */
function acceptedLogins(sshd: RunningSshd): number {
  return sshd
    .log()
    .split("\n")
    .filter((line) => line.includes("Accepted publickey")).length;
}

/** Processes running exactly this argv (for commands the test must clean up after). */
async function processesRunning(argv: string[]): Promise<number[]> {
  const wanted = `${argv.join("\0")}\0`;
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline === wanted) found.push(Number(entry));
  }
  return found;
}

describe("SshRelay: commands on the relay", () => {
  it("runs a command: stdout, stderr and exit code come back, lines reach the sink and the debug log", async () => {
    const { sink, lines } = collectingSink();
    const { result, logs } = await withRelay((session) =>
      session.onRelay(
        { argv: ["sh", "-c", "echo out-1; echo err-1 >&2; echo out-2"], timeoutSeconds: 10 },
        sink,
      ),
    );
    expect(result).toEqual({ exitCode: 0, stdout: "out-1\nout-2\n", stderr: "err-1\n" });
    expect(lines.filter(([stream]) => stream === "stdout")).toEqual([
      ["stdout", "out-1"],
      ["stdout", "out-2"],
    ]);
    expect(lines.filter(([stream]) => stream === "stderr")).toEqual([["stderr", "err-1"]]);
    const logged = logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 20,
        command: "'sh' '-c' 'echo out-1; echo err-1 >&2; echo out-2'",
        stream: "stderr",
        line: "err-1",
      }),
    );
  });

  it("fails a command that exits non-zero with the command, the exit code and the tail of stderr", async () => {
    const script = "for i in $(seq 1 30); do echo problem-$i >&2; done; exit 3";
    const error = await failure(
      withRelay((session) => session.onRelay({ argv: ["sh", "-c", script], timeoutSeconds: 10 })),
    );
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.name).toBe("CommandFailed");
    expect(error.message).toContain(`'sh' '-c' '${script}'`);
    expect(error.message).toContain("exit code 3");
    expect(error.message).toContain(`127.0.0.1:${relaySshd.port}`);
    // The last 20 lines of stderr, not all 30.
    expect(error.message).toMatch(/problem-30\b/);
    expect(error.message).toMatch(/problem-11\b/);
    expect(error.message).not.toMatch(/problem-10\b/);
  });

  it("says so when a failed command wrote no stderr", async () => {
    const error = await failure(
      withRelay((session) => session.onRelay({ argv: ["false"], timeoutSeconds: 10 })),
    );
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.message).toMatch(/'false'.*exit code 1 and no stderr output/);
  });

  it("accepts exactly the exit codes in okExitCodes", async () => {
    const { result } = await withRelay(async (session) => ({
      three: await session.onRelay({
        argv: ["sh", "-c", "echo partial; exit 3"],
        timeoutSeconds: 10,
        okExitCodes: [0, 3],
      }),
      zeroNotListed: await failure(
        session.onRelay({ argv: ["true"], timeoutSeconds: 10, okExitCodes: [3] }),
      ),
    }));
    expect(result.three).toEqual({ exitCode: 3, stdout: "partial\n", stderr: "" });
    expect(result.zeroNotListed).toBeInstanceOf(CommandFailedError);
    expect(result.zeroNotListed.message).toContain("exit code 0");
  });

  it("shows `display` instead of the argv in errors and logs", async () => {
    const { logger, lines } = capturingLogger();
    const error = await failure(
      new SshRelay(relayConfig(), LOOPBACK, logger).session((session) =>
        session.onRelay({
          argv: ["sh", "-c", "echo visible-output; exit 5", "argument-not-to-show"],
          display: "set the root password of pod1-node1",
          timeoutSeconds: 10,
        }),
      ),
    );
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.message).toContain("`set the root password of pod1-node1`");
    expect(error.message).toContain("exit code 5");
    expect(error.message).not.toContain("argument-not-to-show");
    expect(lines.some((line) => line.includes("set the root password of pod1-node1"))).toBe(true);
    expect(lines.some((line) => line.includes("visible-output"))).toBe(true);
    expect(lines.filter((line) => line.includes("argument-not-to-show"))).toEqual([]);
  });

  it("writes stdin to the command and closes it, and never logs it", async () => {
    const secret = "root-password: s3cr3t-'quoted' $(and) `more`\nsecond line";
    const { result, logs } = await withRelay((session) =>
      session.onRelay({ argv: ["sha256sum"], stdin: secret, timeoutSeconds: 10 }),
    );
    const expected = createHash("sha256").update(secret, "utf8").digest("hex");
    expect(result.stdout).toBe(`${expected}  -\n`);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.filter((line) => line.includes("s3cr3t") || line.includes("second line"))).toEqual(
      [],
    );
  });

  it("gives a command without stdin an immediate end of input", async () => {
    const { result } = await withRelay((session) =>
      session.onRelay({ argv: ["cat"], timeoutSeconds: 5 }),
    );
    expect(result).toEqual({ exitCode: 0, stdout: "", stderr: "" });
  });

  it("stops a command that runs past its timeout, and the session stays usable", async () => {
    // A duration no other process uses, to find and clean up the remote `sleep` afterwards.
    const duration = `30.${process.pid}`;
    try {
      const { result } = await withRelay(async (session) => {
        const started = Date.now();
        const timedOut = await failure(
          session.onRelay({ argv: ["sleep", duration], timeoutSeconds: 1 }),
        );
        const after = await session.onRelay({ argv: ["echo", "still here"], timeoutSeconds: 10 });
        return { timedOut, elapsedMs: Date.now() - started, after };
      });
      expect(result.timedOut).toBeInstanceOf(CommandTimeoutError);
      expect(result.timedOut).toBeInstanceOf(CommandFailedError);
      expect(result.timedOut.name).toBe("CommandTimeout");
      expect(result.timedOut.message).toContain(`'sleep' '${duration}'`);
      expect(result.timedOut.message).toContain("within 1s");
      expect(result.elapsedMs).toBeGreaterThanOrEqual(1000);
      expect(result.elapsedMs).toBeLessThan(4000);
      expect(result.after.stdout).toBe("still here\n");
    } finally {
      // sshd refuses signal requests in root sessions, so the remote command outlives its
      // channel; do not leave it behind.
      for (const pid of await processesRunning(["sleep", duration])) process.kill(pid, "SIGKILL");
    }
  });

  it("keeps the tail of a large output while every line goes to the sink", async () => {
    let count = 0;
    let last = "";
    const relay = new SshRelay(relayConfig(), LOOPBACK, silentLogger);
    const result = await relay.session((session) =>
      session.onRelay({ argv: ["seq", "1", "300000"], timeoutSeconds: 30 }, (_stream, line) => {
        count++;
        last = line;
      }),
    );
    expect(count).toBe(300000);
    expect(last).toBe("300000");
    expect(result.stdout.length).toBe(1024 * 1024);
    expect(result.stdout.endsWith("\n299999\n300000\n")).toBe(true);
  });

  it("refuses a relay presenting another host key before logging in: the command never runs", async () => {
    const marker = join(markers, "relay-wrong-key");
    const loginsBefore = acceptedLogins(relaySshd);
    let workRan = false;
    const error = await failure(
      withRelay(
        async (session) => {
          workRan = true;
          return session.onRelay({ argv: ["touch", marker], timeoutSeconds: 10 });
        },
        { hostKey: targetSshd.hostKeyFingerprint },
      ),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain(`127.0.0.1:${relaySshd.port}`);
    expect(error.message).toContain(`expected ${targetSshd.hostKeyFingerprint}`);
    expect(error.message).toContain(`presented ${relaySshd.hostKeyFingerprint}`);
    expect(workRan).toBe(false);
    await sleep(200);
    expect(existsSync(marker)).toBe(false);
    expect(acceptedLogins(relaySshd)).toBe(loginsBefore);
  });

  it("accepts the pinned key in the forms ssh-keygen and people write it", async () => {
    const bare = relaySshd.hostKeyFingerprint;
    for (const hostKey of [bare, ` ${bare}= `, bare.replace("SHA256:", "sha256:")]) {
      const { result } = await withRelay(
        (session) => session.onRelay({ argv: ["true"], timeoutSeconds: 10 }),
        { hostKey },
      );
      expect(result.exitCode).toBe(0);
    }
  });

  it("fails closed on a pinned key that is not a fingerprint, before connecting", async () => {
    const loginsBefore = acceptedLogins(relaySshd);
    for (const hostKey of ["", "any", relaySshd.hostPublicKey, "ab:cd:ef"]) {
      const error = await failure(withRelay(async () => "ran", { hostKey }));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.message).toContain("relay's pinned host_key");
    }
    expect(acceptedLogins(relaySshd)).toBe(loginsBefore);
  });

  it("reports a key the relay does not accept as an AuthError, without the key in the message", async () => {
    const error = await failure(
      withRelay(async () => "ran", { key: new Secret(strangerKey.privateKey, "/etc/laas/other") }),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain(`127.0.0.1:${relaySshd.port}`);
    expect(error.message).toContain("root");
    for (const line of strangerKey.privateKey.split("\n").filter((l) => !l.startsWith("-----"))) {
      if (line.length > 0) expect(error.message).not.toContain(line);
    }
  });

  it("reports an unreadable key as a ConfigError naming where it came from", async () => {
    const error = await failure(
      withRelay(async () => "ran", { key: new Secret("not a key", "/etc/laas/broken_key") }),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("/etc/laas/broken_key");
    expect(error.message).not.toContain("not a key");
  });

  it("reports a relay that does not answer as a TransientError naming it", async () => {
    const port = await freePort("127.0.0.1");
    const error = await failure(withRelay(async () => "ran", { port }));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toContain("connection refused");
  });

  it("closes every connection it opened, also when the work fails", async () => {
    const error = await failure(
      withRelay(async (session) => {
        const host = await session.host(targetLogin());
        await host.run({ argv: ["true"], timeoutSeconds: 10 });
        await session.onRelay({ argv: ["true"], timeoutSeconds: 10 });
        throw new Error("the step failed");
      }),
    );
    expect(error.message).toBe("the step failed");
    await waitFor(
      "the relay's and the host's sshd to have no connection left",
      async () =>
        (await relaySshd.connectionProcesses()).length === 0 &&
        (await targetSshd.connectionProcesses()).length === 0
          ? true
          : undefined,
      5000,
    );
  });
});

describe("SshRelay: hosts through the relay", () => {
  it("logs in to a host through the relay, reports its key on first login and runs commands there", async () => {
    const { result, logs } = await withRelay(async (session) => {
      const host = await session.host(targetLogin());
      const showConnection = { argv: ["sh", "-c", "echo $SSH_CONNECTION"], timeoutSeconds: 10 };
      return {
        hostKey: host.hostKey,
        onHost: await host.run(showConnection),
        onRelay: await session.onRelay(showConnection),
      };
    });
    expect(result.hostKey).toBe(targetSshd.hostKeyFingerprint);
    // SSH_CONNECTION is "client-address client-port server-address server-port".
    expect(result.onHost.stdout.trim().split(" ").slice(2)).toEqual([
      "127.0.0.2",
      String(targetSshd.port),
    ]);
    expect(result.onRelay.stdout.trim().split(" ").slice(2)).toEqual([
      "127.0.0.1",
      String(relaySshd.port),
    ]);
    const logged = logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged).toContainEqual(
      expect.objectContaining({ host: "pod1-node1", hostKey: targetSshd.hostKeyFingerprint }),
    );
  });

  it("requires the recorded key afterwards", async () => {
    const { result } = await withRelay(async (session) => {
      const host = await session.host(
        targetLogin({ expectedHostKey: targetSshd.hostKeyFingerprint }),
      );
      return { hostKey: host.hostKey, run: await host.run({ argv: ["true"], timeoutSeconds: 10 }) };
    });
    expect(result.hostKey).toBe(targetSshd.hostKeyFingerprint);
    expect(result.run.exitCode).toBe(0);
  });

  it("refuses a host presenting another key than expected, naming the host and both keys", async () => {
    const loginsBefore = acceptedLogins(targetSshd);
    const error = await failure(
      withRelay((session) =>
        session.host(targetLogin({ expectedHostKey: relaySshd.hostKeyFingerprint })),
      ),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain("pod1-node1");
    expect(error.message).toContain(`127.0.0.2:${targetSshd.port}`);
    expect(error.message).toContain(`expected ${relaySshd.hostKeyFingerprint}`);
    expect(error.message).toContain(`presented ${targetSshd.hostKeyFingerprint}`);
    await sleep(200);
    expect(acceptedLogins(targetSshd)).toBe(loginsBefore);
  });

  it("fails closed on an expected host key that is not a fingerprint", async () => {
    const error = await failure(
      withRelay((session) => session.host(targetLogin({ expectedHostKey: "not-a-fingerprint" }))),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("pod1-node1");
  });

  it("reports a host that does not listen (down, booting) as a TransientError naming it", async () => {
    const port = await freePort("127.0.0.2");
    const error = await failure(withRelay((session) => session.host(targetLogin({ port }))));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`pod1-node1 (127.0.0.2:${port})`);
    expect(error.message).toMatch(/refused/i);
  });

  it("reports a host login with a key the host does not accept as an AuthError", async () => {
    const error = await failure(
      withRelay((session) =>
        session.host(targetLogin({ key: new Secret(strangerKey.privateKey, "/etc/laas/other") })),
      ),
    );
    expect(error).toBeInstanceOf(AuthError);
    expect(error.message).toContain("pod1-node1");
  });

  it("surfaces exit codes and stderr of commands on the host", async () => {
    const error = await failure(
      withRelay(async (session) => {
        const host = await session.host(targetLogin());
        return host.run({
          argv: ["sh", "-c", "echo no such device >&2; exit 4"],
          timeoutSeconds: 10,
        });
      }),
    );
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.message).toContain("pod1-node1");
    expect(error.message).toContain("exit code 4");
    expect(error.message).toContain("no such device");
  });

  it("reaches the host only through the relay's forwarding", async () => {
    // A relay that does not forward: the same host, reachable directly, cannot be logged in to.
    const closedRelay = await startSshd({
      address: "127.0.0.1",
      authorizedKeys: [labKey.publicKey],
      allowTcpForwarding: false,
    });
    try {
      const error = await failure(
        withRelay((session) => session.host(targetLogin()), {
          port: closedRelay.port,
          hostKey: closedRelay.hostKeyFingerprint,
        }),
      );
      expect(error).toBeInstanceOf(AuthError);
      expect(error.message).toContain("refuses to forward");
      expect(error.message).toContain("pod1-node1");
    } finally {
      await closedRelay.stop();
    }
  });
});

describe("SshRelay: hostile arguments are passed, never run", () => {
  const hostile = (dir: string): string[] => [
    "a b",
    "  leading and trailing  ",
    "'",
    "it's",
    '"',
    "\\",
    `$(touch ${dir}/pwned-subst)`,
    `\`touch ${dir}/pwned-backtick\``,
    `; touch ${dir}/pwned-semicolon`,
    `&& touch ${dir}/pwned-and`,
    `| touch ${dir}/pwned-pipe`,
    `'; touch ${dir}/pwned-quote; echo '`,
    `"; touch ${dir}/pwned-dquote; echo "`,
    `a\ntouch ${dir}/pwned-newline`,
    "a\nb",
    `<xml attr="&amp;">`,
    "--help",
    "-n",
    "*",
    "~",
    "$HOME",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, on purpose
    "${HOME}",
    "#",
    "",
    "é ✓",
  ];

  async function echoEach(run: (argv: string[]) => Promise<{ stdout: string }>, dir: string) {
    const mismatches: { argument: string; stdout: string }[] = [];
    for (const argument of hostile(dir)) {
      const { stdout } = await run(["printf", "%s\\n", argument]);
      if (stdout !== `${argument}\n`) mismatches.push({ argument, stdout });
    }
    return mismatches;
  }

  it("prints each argument exactly, on the relay and on a host, and creates no file", async () => {
    const dir = await mkdtemp(join(markers, "injection-"));
    const { result } = await withRelay(async (session) => {
      const host = await session.host(targetLogin());
      return {
        relay: await echoEach((argv) => session.onRelay({ argv, timeoutSeconds: 10 }), dir),
        host: await echoEach((argv) => host.run({ argv, timeoutSeconds: 10 }), dir),
      };
    });
    expect(result.relay).toEqual([]);
    expect(result.host).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it("runs a hostile program name as one (missing) program, not as a command line", async () => {
    const dir = await mkdtemp(join(markers, "program-"));
    const error = await failure(
      withRelay((session) =>
        session.onRelay({ argv: [`true; touch ${dir}/pwned`], timeoutSeconds: 10 }),
      ),
    );
    expect(error).toBeInstanceOf(CommandFailedError);
    expect(error.message).toContain("exit code 127");
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses an argument with a NUL byte before anything runs", async () => {
    const error = await failure(
      withRelay((session) => session.onRelay({ argv: ["echo", "a\0b"], timeoutSeconds: 10 })),
    );
    expect(error.name).toBe("InvalidCommand");
    expect(errorMessage(error)).toContain("NUL");
  });
});
