import assert from "node:assert/strict";
import { RateLimiter, rateLimitInterval, rateLimitSchema } from "./rate_limit.ts";

/** A clock that only moves when the limiter sleeps, so slot times are exact. */
class FakeClock {
  time = 1000;
  readonly sleeps: number[] = [];
  now = (): number => this.time;
  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.time += ms;
    return Promise.resolve();
  };
}

/** Starts `count` concurrent waits and returns the clock time each one was let through. */
async function startTimes(
  limiter: RateLimiter,
  clock: FakeClock,
  count: number,
): Promise<number[]> {
  const times: number[] = [];
  await Promise.all(
    Array.from({ length: count }, () => limiter.wait().then(() => times.push(clock.time))),
  );
  return times;
}

Deno.test("rateLimitInterval() takes the strictest of the three settings", () => {
  assert.equal(rateLimitInterval({}), 0);
  assert.equal(rateLimitInterval({ perSecond: 4 }), 250);
  assert.equal(rateLimitInterval({ perMinute: 30 }), 2000);
  assert.equal(rateLimitInterval({ perSecond: 10, minIntervalMs: 150 }), 150);
  assert.equal(rateLimitInterval({ perSecond: 10, perMinute: 120, minIntervalMs: 50 }), 500);
});

Deno.test("RateLimiter.wait() lets the first request go at once, then spaces them exactly", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter({ perSecond: 10 }, clock.now, clock.sleep);
  assert.deepEqual(await startTimes(limiter, clock, 4), [1000, 1100, 1200, 1300]);
});

Deno.test("RateLimiter.wait() gives concurrent callers distinct slots in call order", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter({ minIntervalMs: 40 }, clock.now, clock.sleep);
  const order: string[] = [];
  await Promise.all(
    ["a", "b", "c"].map((name) => limiter.wait().then(() => order.push(`${name}@${clock.time}`))),
  );
  assert.deepEqual(order, ["a@1000", "b@1040", "c@1080"]);
});

Deno.test("RateLimiter.wait() does not wait when the interval has already passed", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter({ perMinute: 60 }, clock.now, clock.sleep);
  await limiter.wait();
  clock.time += 5000;
  await limiter.wait();
  assert.deepEqual(clock.sleeps, []);
  await limiter.wait();
  assert.deepEqual(clock.sleeps, [1000]);
  assert.equal(clock.time, 7000);
});

Deno.test("RateLimiter.wait() never waits without a limit", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter({}, clock.now, clock.sleep);
  assert.deepEqual(await startTimes(limiter, clock, 3), [1000, 1000, 1000]);
  assert.deepEqual(clock.sleeps, []);
});

Deno.test("RateLimiter.pauseUntil() holds every request until the pause ends", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter({ minIntervalMs: 100 }, clock.now, clock.sleep);
  await limiter.wait();
  limiter.pauseUntil(5000);
  limiter.pauseUntil(3000); // cannot shorten a pause
  assert.equal(limiter.pausedUntil, 5000);
  assert.deepEqual(await startTimes(limiter, clock, 3), [5000, 5100, 5200]);
});

Deno.test("RateLimiter.pauseFor() pauses relative to the limiter's clock", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter({}, clock.now, clock.sleep);
  limiter.pauseFor(250);
  assert.deepEqual(await startTimes(limiter, clock, 2), [1250, 1250]);
});

Deno.test("RateLimiter.pauseUntil() during a wait is noticed by the sleeping caller", async () => {
  let time = 0;
  const sleeps: number[] = [];
  const limiter = new RateLimiter({ minIntervalMs: 100 }, () => time, (ms) => {
    sleeps.push(ms);
    time += ms;
    // The server answers "pause" while this caller sleeps.
    if (sleeps.length === 1) limiter.pauseUntil(1000);
    return Promise.resolve();
  });
  await limiter.wait();
  await limiter.wait();
  assert.equal(time, 1000);
  assert.deepEqual(sleeps, [100, 900]);
});

Deno.test("RateLimiter.tighten() keeps the strictest interval", async () => {
  const clock = new FakeClock();
  const limiter = new RateLimiter({ perSecond: 10 }, clock.now, clock.sleep);
  limiter.tighten({ perSecond: 20 });
  assert.equal(limiter.intervalMs, 100);
  limiter.tighten({ minIntervalMs: 300 });
  assert.equal(limiter.intervalMs, 300);
  assert.deepEqual(await startTimes(limiter, clock, 2), [1000, 1300]);
});

Deno.test("RateLimiter.wait() rejects an aborted caller and serves the next one", async () => {
  const limiter = new RateLimiter({ minIntervalMs: 60_000 });
  await limiter.wait();
  const controller = new AbortController();
  const waiting = limiter.wait(controller.signal);
  controller.abort(new Error("stopped"));
  await assert.rejects(waiting, { message: "stopped" });
  await assert.rejects(limiter.wait(controller.signal), { message: "stopped" });

  // A queued caller behind an aborted one still gets its turn (with a real clock).
  const short = new RateLimiter({ minIntervalMs: 20 });
  await short.wait();
  const second = new AbortController();
  const abandoned = short.wait(second.signal);
  const next = short.wait();
  second.abort(new Error("gone"));
  await assert.rejects(abandoned, { message: "gone" });
  await next; // would hang if the abandoned caller had broken the queue
});

Deno.test("rateLimitSchema accepts positive numbers only and rejects unknown keys", () => {
  assert.deepEqual(rateLimitSchema.parse({ perSecond: 2 }), { perSecond: 2 });
  assert.equal(rateLimitSchema.safeParse({ perSecond: 0 }).success, false);
  assert.equal(rateLimitSchema.safeParse({ perMinute: "fast" }).success, false);
  assert.equal(rateLimitSchema.safeParse({ perHour: 5 }).success, false);
  for (const field of Object.values(rateLimitSchema.shape)) assert.ok(field.description);
});
