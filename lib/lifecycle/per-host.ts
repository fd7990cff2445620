/**
 * Work over items that each belong to a host: one host's items one after another, in the order
 * given; different hosts side by side, at most `concurrency` of them at a time.
 *
 * Why by host: two bookings of one host touch the same host record, and what one does decides
 * what the other may do (one ending frees the host for the next). Walked in order, each sees the
 * other's writes exactly as a walk through the whole list would; bookings of other hosts share
 * nothing with them and need not wait. The bound keeps a burst of due bookings from opening more
 * requests at once than the store, the engine and the sockets can take.
 */
import pLimit from "p-limit";

/**
 * Runs `work` on every item and answers the results in the items' order. `work` should handle
 * its own errors: one that throws ends its host's turn (that host's later items are skipped), and
 * the first such error is rethrown once every other host's work has ended.
 */
export async function perHost<T, R>(
  items: readonly T[],
  hostOf: (item: T) => string,
  concurrency: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, not ${concurrency}`);
  }
  const byHost = new Map<string, number[]>();
  items.forEach((item, index) => {
    const host = hostOf(item);
    const indices = byHost.get(host);
    if (indices) indices.push(index);
    else byHost.set(host, [index]);
  });
  const results: R[] = new Array(items.length);
  const limit = pLimit(concurrency);
  const turns = [...byHost.values()].map((indices) =>
    limit(async () => {
      for (const index of indices) results[index] = await work(items[index] as T);
    }),
  );
  const failed = (await Promise.allSettled(turns)).find((turn) => turn.status === "rejected");
  if (failed) throw failed.reason;
  return results;
}
