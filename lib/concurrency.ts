/**
 * Bounded concurrency: a semaphore and a streaming map with at most N tasks in flight.
 * @module
 */

/** A counting semaphore; `run` waits for a free slot. */
export class Semaphore {
  #free: number;
  #waiters: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(
        `Cannot create semaphore: limit must be a positive integer, got ${limit}`,
      );
    }
    this.#free = limit;
  }

  /** Tasks currently holding a slot. */
  get active(): number {
    return this.limit - this.#free;
  }

  /** Waits for a slot; call the returned function to free it. */
  async acquire(): Promise<() => void> {
    if (this.#free > 0) {
      this.#free--;
    } else {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free++;
    };
  }

  /** Runs `task` when a slot is free. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await task();
    } finally {
      release();
    }
  }
}

/**
 * Maps `source` through `fn` with at most `limit` calls in flight and yields
 * results as they complete (not in input order). Reads ahead at most `limit`
 * items, so memory stays bounded. If `fn` throws, the error is re-thrown after
 * in-flight calls settle, and no further items are started.
 */
export async function* mapConcurrent<T, R>(
  source: AsyncIterable<T>,
  limit: number,
  fn: (value: T) => Promise<R>,
): AsyncGenerator<R> {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`Cannot map: limit must be a positive integer, got ${limit}`);
  }
  const inFlight = new Map<number, Promise<{ id: number; result: R }>>();
  let nextId = 0;
  let failure: { error: unknown } | undefined;
  const iterator = source[Symbol.asyncIterator]();
  let done = false;

  function start(value: T): void {
    const id = nextId++;
    inFlight.set(
      id,
      fn(value).then(
        (result) => ({ id, result }),
        (error) => {
          failure ??= { error };
          return { id, result: undefined as R };
        },
      ),
    );
  }

  try {
    while (true) {
      while (!done && !failure && inFlight.size < limit) {
        const next = await iterator.next();
        if (next.done) done = true;
        else start(next.value);
      }
      if (inFlight.size === 0) break;
      const settled = await Promise.race(inFlight.values());
      inFlight.delete(settled.id);
      if (failure) continue;
      yield settled.result;
    }
    if (failure) throw failure.error;
  } finally {
    if (!done) await iterator.return?.();
  }
}
