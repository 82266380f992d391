import assert from "node:assert/strict";
import { mapConcurrent, Semaphore } from "./concurrency.ts";
import { collect, fromArray } from "../tests/harness.ts";

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("mapConcurrent() never exceeds the limit and returns every result", async () => {
  let active = 0;
  let peak = 0;
  const results = await collect(
    mapConcurrent(fromArray(Array.from({ length: 20 }, (_, i) => i)), 4, async (n) => {
      active++;
      peak = Math.max(peak, active);
      await tick(n % 3);
      active--;
      return n * 2;
    }),
  );
  assert.equal(peak, 4);
  assert.deepEqual(results.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i * 2));
});

Deno.test("mapConcurrent() reads ahead at most `limit` items", async () => {
  let pulled = 0;
  async function* source() {
    for (let i = 0; i < 100; i++) {
      pulled++;
      yield i;
    }
  }
  const iterator = mapConcurrent(source(), 3, async (n) => {
    await tick(1);
    return n;
  })[Symbol.asyncIterator]();
  await iterator.next();
  assert.ok(pulled <= 4, `pulled ${pulled}`);
  await iterator.return?.(undefined);
});

Deno.test("mapConcurrent() rethrows after in-flight calls settle and starts no more", async () => {
  const started: number[] = [];
  const settled: number[] = [];
  await assert.rejects(
    () =>
      collect(mapConcurrent(fromArray([1, 2, 3, 4, 5, 6]), 2, async (n) => {
        started.push(n);
        await tick(n === 1 ? 1 : 5);
        settled.push(n);
        if (n === 1) throw new Error("boom 1");
        return n;
      })),
    /boom 1/,
  );
  assert.deepEqual(started, [1, 2]);
  assert.deepEqual(settled.sort(), [1, 2]);
});

Deno.test("Semaphore hands slots out in order", async () => {
  const semaphore = new Semaphore(1);
  const order: string[] = [];
  const release = await semaphore.acquire();
  const second = semaphore.run(() => {
    order.push("second");
    return Promise.resolve();
  });
  order.push("first");
  assert.equal(semaphore.active, 1);
  release();
  await second;
  assert.deepEqual(order, ["first", "second"]);
  assert.equal(semaphore.active, 0);
});
