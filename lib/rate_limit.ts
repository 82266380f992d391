/**
 * A rate limiter that spaces request starts evenly, shared by every client
 * talking to one host.
 * @module
 */
import { z } from "zod";
import { sleep } from "./retry.ts";

/** Config schema for a rate limit; stages embed it (as `rateLimit`) in their own configs. */
export const rateLimitSchema = z.object({
  perSecond: z.number().positive().optional()
    .describe("At most this many requests start per second (spaced evenly)."),
  perMinute: z.number().positive().optional()
    .describe("At most this many requests start per minute (spaced evenly)."),
  minIntervalMs: z.number().positive().optional()
    .describe("At least this many milliseconds between the starts of two requests."),
}).strict();

/** Parsed rate limit options. */
export type RateLimitOptions = z.output<typeof rateLimitSchema>;

/**
 * The spacing a rate limit asks for, in milliseconds: the largest of
 * `minIntervalMs`, `1000 / perSecond` and `60000 / perMinute` (0 when unlimited).
 */
export function rateLimitInterval(opts: RateLimitOptions = {}): number {
  return Math.max(
    0,
    opts.minIntervalMs ?? 0,
    opts.perSecond ? 1000 / opts.perSecond : 0,
    opts.perMinute ? 60_000 / opts.perMinute : 0,
  );
}

/**
 * Spaces request starts at least `interval` apart (see {@linkcode rateLimitInterval}).
 *
 * The first request goes at once. Concurrent callers are served first come,
 * first served: each `wait()` queues behind the previous one and takes the next
 * free slot, so N concurrent callers get N distinct slots. Slot times are
 * measured from when the previous caller actually started, so the spacing
 * holds even when timers fire late. A caller whose signal aborts leaves the
 * queue at once, without taking a slot.
 */
export class RateLimiter {
  #interval: number;
  #last = -Infinity;
  #pausedUntil = -Infinity;
  #tail: Promise<void> = Promise.resolve();
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(
    opts: RateLimitOptions,
    now: () => number = () => performance.now(),
    sleepFn: (ms: number, signal?: AbortSignal) => Promise<void> = sleep,
  ) {
    this.#interval = rateLimitInterval(opts);
    this.#now = now;
    this.#sleep = sleepFn;
  }

  /** Current spacing between request starts, in milliseconds. */
  get intervalMs(): number {
    return this.#interval;
  }

  /** The limiter's clock (milliseconds; `performance.now()` unless injected). */
  now(): number {
    return this.#now();
  }

  /** Until when (on the limiter's clock) the host is paused; `-Infinity` when never paused. */
  get pausedUntil(): number {
    return this.#pausedUntil;
  }

  /** Makes the spacing at least as strict as `opts` asks (a shared host keeps the strictest). */
  tighten(opts: RateLimitOptions): void {
    this.#interval = Math.max(this.#interval, rateLimitInterval(opts));
  }

  /** Resolves when the caller may start its request; rejects with `signal.reason` on abort. */
  wait(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const turn = this.#tail.then(() => signal?.aborted ? undefined : this.#take(signal));
    // The next caller queues behind this one, whether it got its slot or gave up.
    this.#tail = turn.catch(() => {});
    return signal ? raceAbort(turn, signal) : turn;
  }

  /**
   * No request starts before `ms` (on the limiter's clock). A later call can
   * only extend the pause, never shorten it; waiting callers notice it too.
   */
  pauseUntil(ms: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, ms);
  }

  /** Pauses the host for `ms` milliseconds from now. */
  pauseFor(ms: number): void {
    this.pauseUntil(this.#now() + ms);
  }

  async #take(signal?: AbortSignal): Promise<void> {
    // Loop: a pause may be extended while this caller sleeps.
    while (true) {
      const now = this.#now();
      const slot = Math.max(this.#last + this.#interval, this.#pausedUntil);
      if (slot <= now) {
        this.#last = now;
        return;
      }
      await this.#sleep(slot - now, signal);
    }
  }
}

/** `promise`, but rejecting with `signal.reason` as soon as `signal` aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>(function race(resolve, reject) {
    function onAbort(): void {
      reject(signal.reason);
    }
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      function settled(value) {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      function failed(error) {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
