/**
 * The bounded retry of reads the dashboard and FOG clients share: what is tried again, how often,
 * and that the whole read stays within its budget (later attempts get only the time left).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { DEFAULT_READ_RETRY, readWithRetry } from "../lib/adapters/read-retry";
import { AuthError, ConfigError, TransientError } from "../lib/errors";

const quick = { ...DEFAULT_READ_RETRY, firstDelayMs: 5, maxDelayMs: 20 };

describe("readWithRetry", () => {
  it("tries a TransientError again, up to the attempts, then throws the last one", async () => {
    const given: number[] = [];
    const error = await readWithRetry(
      async (timeoutMs) => {
        given.push(timeoutMs);
        throw new TransientError(`attempt ${given.length}`);
      },
      { policy: quick, requestTimeoutMs: 30_000 },
    ).catch((caught: unknown) => caught);
    expect(error).toEqual(new TransientError("attempt 4"));
    // The first attempt has its whole request timeout; the later ones what is left of the
    // read's time (here the request timeout, longer than the budget), nearly all of it.
    expect(given[0]).toBe(30_000);
    expect(given).toHaveLength(4);
    for (const timeoutMs of given.slice(1)) expect(timeoutMs).toBeGreaterThan(29_000);
  });

  it("answers as soon as an attempt succeeds", async () => {
    let calls = 0;
    const value = await readWithRetry(
      async () => {
        calls += 1;
        if (calls < 3) throw new TransientError("not yet");
        return "read";
      },
      { policy: quick, requestTimeoutMs: 1_000 },
    );
    expect(value).toBe("read");
    expect(calls).toBe(3);
  });

  it.each([new AuthError("token refused"), new ConfigError("wrong URL"), new Error("a bug")])(
    "never tries %s again",
    async (final) => {
      let calls = 0;
      await expect(
        readWithRetry(
          async () => {
            calls += 1;
            throw final;
          },
          { policy: quick, requestTimeoutMs: 1_000 },
        ),
      ).rejects.toBe(final);
      expect(calls).toBe(1);
    },
  );

  it("gives a later attempt only what is left of the budget, and starts none it cannot fit", async () => {
    const given: number[] = [];
    const started = performance.now();
    await expect(
      readWithRetry(
        async (timeoutMs) => {
          given.push(timeoutMs);
          await sleep(1_000); // an attempt that hangs for a second, then fails
          throw new TransientError("no answer");
        },
        { policy: { ...quick, budgetMs: 2_500 }, requestTimeoutMs: 2_000 },
      ),
    ).rejects.toThrow("no answer");
    const tookMs = performance.now() - started;
    // The first attempt gets its whole request timeout; the second the ~1.5 s left; after it,
    // less than the shortest attempt worth making (1 s) is left, so no third starts.
    expect(given).toHaveLength(2);
    expect(given[0]).toBe(2_000);
    expect(given[1]).toBeGreaterThan(1_300);
    expect(given[1]).toBeLessThan(1_500);
    expect(tookMs).toBeLessThan(2_600);
  });

  it("lets one request timeout longer than the budget run whole, and no attempt after it", async () => {
    const given: number[] = [];
    await expect(
      readWithRetry(
        async (timeoutMs) => {
          given.push(timeoutMs);
          await sleep(300);
          throw new TransientError("slow");
        },
        { policy: { ...quick, budgetMs: 100 }, requestTimeoutMs: 400 },
      ),
    ).rejects.toThrow("slow");
    expect(given).toEqual([400]);
  });

  it("tells of each failure it tries again, and not of the last", async () => {
    const told: number[] = [];
    await readWithRetry(
      async () => {
        throw new TransientError("down");
      },
      { policy: quick, requestTimeoutMs: 1_000, onRetry: (_, attempt) => told.push(attempt) },
    ).catch(() => undefined);
    expect(told).toEqual([1, 2, 3]);
  });
});
