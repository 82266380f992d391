/**
 * Batching for sinks: group a stream into arrays of at most `size` items.
 * @module
 */

/**
 * Yields arrays of at most `size` items from `source`, in order. The last
 * batch may be shorter; an empty source yields nothing.
 */
export async function* batches<T>(source: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`Cannot batch: size must be a positive integer, got ${size}`);
  }
  let batch: T[] = [];
  for await (const value of source) {
    batch.push(value);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
