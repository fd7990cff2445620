/**
 * readAhead (lib/lifecycle/read-ahead.ts), which lets poll read the dashboard's pages while it
 * reads the store: items in order, read before they are asked for, never more held than the
 * bound, a failure in its place, and nothing read after the consumer leaves.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { readAhead } from "../lib/lifecycle/read-ahead";

/** A source of `count` numbered items that records each read, failing at `failAt` if given. */
function source(count: number, failAt?: number) {
  const reads: number[] = [];
  let closed = false;
  async function* items() {
    try {
      for (let i = 1; i <= count; i++) {
        await sleep(1);
        reads.push(i);
        if (i === failAt) throw new Error(`page ${i} failed`);
        yield i;
      }
    } finally {
      closed = true;
    }
  }
  return { items: items(), reads, closed: () => closed };
}

/** Lets the reading loop run until it has nothing more to do. */
const settle = () => sleep(30);

describe("readAhead", () => {
  it("gives every item in order", async () => {
    const { items } = source(10);
    const got: number[] = [];
    for await (const item of readAhead(items, { most: 3 })) got.push(item);
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("reads before the first item is asked for, and pauses at the bound", async () => {
    const { items, reads } = source(10);
    const ahead = readAhead(items, { most: 3 });
    await settle();
    expect(reads).toEqual([1, 2, 3]);
    expect(await ahead.next()).toEqual({ done: false, value: 1 });
    await settle();
    expect(reads).toEqual([1, 2, 3, 4]);
    await ahead.return();
  });

  it("weighs items as told: the bound is on their weight, not their count", async () => {
    const { items, reads } = source(10);
    // Items 1, 2, 3 weigh 1, 2, 3: the bound of 3 is reached with the second.
    const ahead = readAhead(items, { most: 3, weight: (n) => n });
    await settle();
    expect(reads).toEqual([1, 2]);
    await ahead.next();
    await settle();
    expect(reads).toEqual([1, 2, 3]);
    await ahead.return();
  });

  it("delivers a failure after the items before it, and reads nothing after it", async () => {
    const { items, reads } = source(10, 3);
    const ahead = readAhead(items, { most: 5 });
    await settle();
    expect(await ahead.next()).toEqual({ done: false, value: 1 });
    expect(await ahead.next()).toEqual({ done: false, value: 2 });
    await expect(ahead.next()).rejects.toThrow("page 3 failed");
    expect(await ahead.next()).toEqual({ done: true, value: undefined });
    expect(reads).toEqual([1, 2, 3]);
  });

  it("stops reading and closes the source when the consumer leaves", async () => {
    const { items, reads, closed } = source(10);
    const ahead = readAhead(items, { most: 2 });
    await ahead.next();
    await ahead.return();
    const readWhenLeft = reads.length;
    await settle();
    expect(reads).toHaveLength(readWhenLeft);
    expect(closed()).toBe(true);
    expect(await ahead.next()).toEqual({ done: true, value: undefined });
  });

  it("refuses a bound that would hold nothing", () => {
    expect(() => readAhead(source(1).items, { most: 0 })).toThrow(/above 0/);
  });
});
