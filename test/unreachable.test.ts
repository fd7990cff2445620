/**
 * A wait on something that does not answer says what it waits for: the relay and FOG at a
 * closed port. Each attempt made again is a warning naming the endpoint, why ("connection
 * refused"), which attempt comes and until when; the error it ends with names the endpoint too.
 */
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { FogClient } from "../lib/adapters/fog/fog-client";
import type { RetryPolicy } from "../lib/adapters/retry";
import { SshRelay } from "../lib/adapters/ssh/ssh-relay";
import { TransientError, UnreachableError } from "../lib/errors";
import { newBooking } from "../lib/lifecycle/transitions";
import type { Looks, Waiting } from "../lib/lifecycle/watch";
import { lookAtLabHosts } from "../lib/lifecycle/watch-lab-hosts";
import type { Runtime } from "../lib/ports/runtime";
import { Secret } from "../lib/secret";
import { generateClientKey } from "../sim/bare-metal";
import { dashboardBooking } from "./helpers/bookings";
import { capturingLogger } from "./helpers/logs";

/** A loopback port nothing listens on (taken, then let go). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
  }
  throw new Error("expected a failure");
}

const WARNING = 40;
const CLOCK = "\\d\\d:\\d\\d:\\d\\d [A-Z][A-Za-z0-9+:-]*";

describe("waiting for the relay at a closed port", () => {
  it("warns at each attempt what it waits for and until when, and fails naming the relay", async () => {
    const port = await closedPort();
    const { logger, lines } = capturingLogger();
    const retry: RetryPolicy = { retries: 2, minDelayMs: 20, maxDelayMs: 40, maxRetryMs: 30_000 };
    const relay = new SshRelay(
      {
        host: "127.0.0.1",
        port,
        user: "laas",
        key: new Secret(generateClientKey().privateKey, "relay_key"),
        hostKey: `SHA256:${"A".repeat(43)}`,
        timeoutSeconds: 5,
        hostIdentity: "neighbour",
      },
      { labSubnets: ["127.0.0.0/8"], names: [] },
      logger,
      { retry },
    );
    const error = await failure(relay.session(async () => undefined));
    // Still a TransientError (the workflows' Retry matches its name), now saying whom it waited for.
    expect(error).toBeInstanceOf(UnreachableError);
    expect(error.name).toBe(new TransientError("").name);
    expect(error.message).toMatch(
      new RegExp(
        `^the relay at 127\\.0\\.0\\.1:${port} did not answer: connection refused ` +
          `\\(3 attempts, from ${CLOCK} to ${CLOCK}\\)$`,
      ),
    );
    const warnings = lines
      .map((line) => JSON.parse(line) as { level: number; msg: string; relay?: string })
      .filter((line) => line.level === WARNING);
    expect(warnings.map((w) => w.msg)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^waiting for the relay at 127\\.0\\.0\\.1:${port} \\(connection refused\\); ` +
            `attempt 2 of 3, none started after ${CLOCK}$`,
        ),
      ),
      expect.stringMatching(/; attempt 3 of 3, none started after /),
    ]);
    expect(warnings[0]?.relay).toBe(`127.0.0.1:${port}`);
  });
});

describe("waiting for FOG at a closed port", () => {
  it("warns at each attempt, naming FOG's address and why", async () => {
    const port = await closedPort();
    const { logger, lines } = capturingLogger();
    const fog = new FogClient(
      {
        server: `http://127.0.0.1:${port}/fog/`,
        apiKey: new Secret("api", "api_key"),
        userKey: new Secret("user", "user_key"),
        requestTimeoutSeconds: 5,
      },
      logger,
      { retries: 2, retryMinDelayMs: 20, retryMaxDelayMs: 40 },
    );
    const error = await failure(fog.listHosts());
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toContain(`FOG did not answer GET http://127.0.0.1:${port}/fog/host`);
    const warnings = lines
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((line) => line.level === WARNING)
      .map((line) => line.msg);
    expect(warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `^waiting for FOG at http://127\\.0\\.0\\.1:${port}/fog/ \\(fetch failed: .*ECONNREFUSED.*\\); ` +
            `attempt 2 of 3, none started after ${CLOCK}$`,
        ),
      ),
      expect.stringMatching(/; attempt 3 of 3, none started after /),
    ]);
  });
});

describe("the watcher, the relay out of reach", () => {
  it("warns, and a host's wait says in its progress that it waits for the relay", async () => {
    const { logger, lines } = capturingLogger();
    const down = new UnreachableError(
      "the relay at 10.0.0.5:22 did not answer: connection refused (3 attempts)",
      "connection refused",
    );
    const rt = {
      relay: { session: async () => Promise.reject(down) },
      logger,
      now: () => new Date(),
    } as unknown as Runtime;
    const booking = newBooking(dashboardBooking({ id: "77", hostName: "pod-77" }), new Date());
    const waiting: Waiting = {
      booking,
      wait: {
        event: "host-up",
        phase: "provision",
        generation: 1,
        token: "t",
        since: new Date().toISOString(),
        deadline: new Date(Date.now() + 60_000).toISOString(),
        outcome: null,
        answeredAt: null,
      },
      input: { bookingId: "77", hostName: "pod-77", phase: "provision", generation: 1 },
      config: {} as Waiting["config"],
    };
    const looks: Looks = new Map();
    await lookAtLabHosts(rt, [waiting], [], looks);
    expect(looks.get("77")).toEqual({
      kind: "pending",
      progress: "waiting for the host to boot (the relay does not answer: connection refused)",
    });
    const warnings = lines
      .map((line) => JSON.parse(line) as { level: number; msg: string; err: string })
      .filter((line) => line.level === WARNING);
    expect(warnings).toEqual([
      expect.objectContaining({
        msg: "the watcher cannot reach the relay: the hosts' waits go on, each to its deadline",
        err: down.message,
      }),
    ]);
  });
});
