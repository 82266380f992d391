import assert from "node:assert/strict";
import { backoffDelay, parseRetryAfter, retrySchema, sleep } from "./retry.ts";

Deno.test("backoffDelay() doubles from initialMs and caps at maxMs", () => {
  const opts = { initialMs: 100, maxMs: 1000, jitter: false };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, opts)), [
    100,
    200,
    400,
    800,
    1000,
    1000,
  ]);
});

Deno.test("backoffDelay() with jitter stays between 50% and 100% of the backoff", () => {
  const opts = { initialMs: 100, maxMs: 1000, jitter: true };
  assert.equal(backoffDelay(3, opts, () => 0), 200);
  assert.equal(backoffDelay(3, opts, () => 0.5), 300);
  assert.equal(backoffDelay(3, opts, () => 0.999999), 400);
  assert.equal(backoffDelay(9, opts, () => 0), 500);
});

Deno.test("parseRetryAfter() reads delta seconds", () => {
  assert.equal(parseRetryAfter("120", 0), 120_000);
  assert.equal(parseRetryAfter(" 0 ", 0), 0);
  assert.equal(parseRetryAfter("1.5", 0), 1500);
});

Deno.test("parseRetryAfter() reads an HTTP date relative to now", () => {
  const now = Date.parse("2026-03-01T12:00:00Z");
  assert.equal(parseRetryAfter("Sun, 01 Mar 2026 12:00:30 GMT", now), 30_000);
  assert.equal(parseRetryAfter("Sun, 01 Mar 2026 11:00:00 GMT", now), 0);
});

Deno.test("parseRetryAfter() ignores missing and unreadable values", () => {
  assert.equal(parseRetryAfter(null, 0), undefined);
  assert.equal(parseRetryAfter("", 0), undefined);
  assert.equal(parseRetryAfter("-5", 0), undefined);
  assert.equal(parseRetryAfter("soon", 0), undefined);
});

Deno.test("sleep() resolves after the delay", async () => {
  const before = performance.now();
  await sleep(20);
  assert.ok(performance.now() - before >= 15);
});

Deno.test("sleep() rejects with the signal's reason on abort", async () => {
  const controller = new AbortController();
  const sleeping = sleep(60_000, controller.signal);
  controller.abort(new Error("cancelled"));
  await assert.rejects(sleeping, { message: "cancelled" });
  await assert.rejects(sleep(10, controller.signal), { message: "cancelled" });
});

Deno.test("retrySchema fills in its defaults", () => {
  assert.deepEqual(retrySchema.parse({}), {
    attempts: 3,
    initialMs: 500,
    maxMs: 30_000,
    jitter: true,
  });
  assert.equal(retrySchema.safeParse({ attempts: 0 }).success, false);
  assert.equal(retrySchema.safeParse({ tries: 2 }).success, false);
});
