/**
 * Retry helpers: exponential backoff with jitter, `Retry-After` parsing and an
 * abortable sleep. The HTTP client composes them; sinks may use them directly.
 * @module
 */
import { z } from "zod";

/** Config schema for retries; stages embed it (as `retry`) in their own configs. */
export const retrySchema = z.object({
  attempts: z.number().int().positive().default(3)
    .describe("Total attempts per request, the first one included (1 = no retry)."),
  initialMs: z.number().nonnegative().default(500)
    .describe("Backoff before the first retry, in milliseconds; doubles on each further retry."),
  maxMs: z.number().nonnegative().default(30_000)
    .describe("Upper bound of one backoff wait, in milliseconds."),
  jitter: z.boolean().default(true)
    .describe("Randomise each wait between 50% and 100% of its backoff, so clients spread out."),
}).strict();

/** Parsed retry options. */
export type RetryOptions = z.output<typeof retrySchema>;

/**
 * The wait before retry number `attempt` (1 = the first retry):
 * `initialMs * 2^(attempt-1)`, capped at `maxMs`. With `jitter`, the result is
 * drawn uniformly between 50% and 100% of that cap ("equal jitter"): retries
 * spread out, yet never come back sooner than half the nominal backoff.
 */
export function backoffDelay(
  attempt: number,
  opts: { initialMs: number; maxMs: number; jitter: boolean },
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, attempt - 1);
  const cap = Math.min(opts.maxMs, opts.initialMs * 2 ** exponent);
  if (!opts.jitter) return cap;
  return Math.round(cap / 2 + (cap / 2) * random());
}

/**
 * Milliseconds to wait according to a `Retry-After` header value: either
 * delta seconds (`"120"`, fractions accepted) or an HTTP date, relative to
 * `now` (epoch milliseconds). A date in the past gives 0. `undefined` when the
 * header is missing or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text) * 1000);
  // Only dates (with a weekday or month name) count: Date.parse accepts odd numbers too.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Resolves after `ms` milliseconds; rejects with `signal.reason` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>(function waitFor(resolve, reject) {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    function onAbort(): void {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
