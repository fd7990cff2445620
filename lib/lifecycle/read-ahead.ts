/**
 * An async iterable read ahead of its consumer, up to a bound: while the consumer is busy (the
 * poll reads the store, or compares a page), the next items are already being fetched, one after
 * another as the source requires (a dashboard page names the next one). Reading pauses once what
 * is held weighs `most` (an item's weight is 1 unless `weight` says otherwise: a page weighs its
 * bookings), and goes on as the consumer takes items. A failure is delivered in its place, after
 * the items before it, and nothing is read after it; leaving early (return) stops the reading once
 * the read under way is in, and closes the source.
 */
export interface ReadAheadOptions<T> {
  /** How much may be held, read and not yet taken, before reading pauses. */
  most: number;
  weight?: (item: T) => number;
}

export interface ReadAhead<T> extends AsyncIterableIterator<T> {
  return(): Promise<IteratorResult<T>>;
}

type Held<T> =
  | { ok: true; result: IteratorResult<T>; weight: number }
  | { ok: false; error: unknown };

export function readAhead<T>(source: AsyncIterable<T>, options: ReadAheadOptions<T>): ReadAhead<T> {
  const { most, weight = () => 1 } = options;
  if (!(most > 0)) throw new RangeError(`read-ahead's bound must be above 0, not ${most}`);
  const iterator = source[Symbol.asyncIterator]();
  const done: IteratorResult<T> = { done: true, value: undefined };
  const held: Held<T>[] = [];
  let heldWeight = 0;
  let finished = false;
  let stopped = false;
  /** The reading loop while it runs; it ends when paused, finished or stopped. */
  let reading: Promise<void> | null = null;
  /** The consumer waiting for the next item, if it is. */
  let wake: (() => void) | null = null;

  const readOn = (): void => {
    if (reading !== null || finished || stopped) return;
    reading = (async () => {
      while (!finished && !stopped && heldWeight < most) {
        let entry: Held<T>;
        try {
          const result = await iterator.next();
          if (result.done) finished = true;
          entry = { ok: true, result, weight: result.done ? 0 : weight(result.value) };
        } catch (error) {
          finished = true;
          entry = { ok: false, error };
        }
        if (stopped) break;
        held.push(entry);
        if (entry.ok) heldWeight += entry.weight;
        wake?.();
      }
    })().finally(() => {
      reading = null;
    });
  };

  // Reading starts now, not at the first next(): the consumer may be busy with something else.
  readOn();
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next(): Promise<IteratorResult<T>> {
      while (held.length === 0) {
        if (stopped || (finished && reading === null)) return done;
        readOn();
        await new Promise<void>((resolve) => {
          wake = resolve;
          // The loop may have ended (paused, finished) without anything to wake for.
          void reading?.then(resolve);
        });
        wake = null;
      }
      const entry = held.shift() as Held<T>;
      if (!entry.ok) throw entry.error;
      heldWeight -= entry.weight;
      readOn();
      return entry.result;
    },
    async return(): Promise<IteratorResult<T>> {
      stopped = true;
      held.length = 0;
      await reading;
      await iterator.return?.();
      return done;
    },
  };
}
