/**
 * `sync-tickets.webhook`: sends each record as one JSON request (POST by
 * default) to a webhook URL, one at a time unless `concurrency` says more,
 * spaced by the shared client's `rateLimit` (e.g. `{ "minIntervalMs": 1800 }`).
 *
 * Outcomes: a 2xx answer is `created` (first delivery to this URL) or
 * `updated` (this URL got an older version of the record); a record whose
 * content was already delivered to this URL is `unchanged` and nothing is sent
 * (unless the run is `--full`). A 4xx fails the record (dead-lettered, exit 4);
 * 429, 5xx and network errors are retried; 401/403 stop the run (exit 3).
 *
 * Delivery log: after every 2xx the sink writes the record's content hash for
 * this URL into the state ledger at once (its cache table), before the next
 * request starts. So a run killed at any moment re-sends, on the next run,
 * only a request that was in flight at the kill; that one goes out again with
 * the same body and the same `Idempotency-Key` (pipeline, key and content
 * hash), so the receiver can recognise it. The log is per URL: sending a
 * record to a test endpoint does not count as delivering it to production.
 *
 * The spacing holds across runs too: the time of the last delivery to the URL
 * is kept with the log, and a new run's first request waits until the spacing
 * since then has passed (a run stopped and started again at once would
 * otherwise send two webhooks back to back).
 * @module
 */
import { z } from "zod";
import { errorMessage, RecordError } from "../../lib/errors.ts";
import { contentHash } from "../../lib/hash.ts";
import { isActionable, mergeOutcome } from "../../lib/outcome.ts";
import { defineStage, type SyncResult } from "../../lib/stage.ts";
import {
  Halt,
  httpSinkOptions,
  renderBody,
  renderPath,
  syncConcurrently,
} from "../../lib/http_sink.ts";
import { clientOptions } from "../../lib/http.ts";
import { rateLimitInterval } from "../../lib/rate_limit.ts";
import { sleep } from "../../lib/retry.ts";

/** Cache namespace of the delivery log. */
export const DELIVERY_LOG = "webhook.delivered";
/** Cache namespace of the time of the last delivery, per destination. */
const LAST_DELIVERY = "webhook.last-delivery";

/** The stage definition. */
export const stage = defineStage({
  kind: "sync-tickets",
  name: "webhook",
  summary:
    "POST each record (or a body template) to a webhook URL, one at a time and rate-limited; resends nothing already delivered.",
  config: z.object({
    ...httpSinkOptions,
    concurrency: z.number().int().positive().default(1).describe(
      "Requests in flight at once (1: one at a time, in order); shared per host, the smallest wins.",
    ),
    url: z.string().min(1).describe(
      'Webhook URL, or a path relative to baseUrl, e.g. "${env:WEBHOOK_URL}"; {field} placeholders are URL-encoded values of the record.',
    ),
    method: z.enum(["POST", "PUT", "PATCH"]).default("POST").describe("HTTP method."),
    body: z.unknown().optional().describe(
      'Body template: a JSON value whose strings may hold {field} placeholders ("{$data}" is the whole record). Omitted: the record itself.',
    ),
    idempotencyHeader: z.string().min(1).nullable().default("Idempotency-Key").describe(
      "Header carrying a key derived from pipeline, record key and content hash, the same on every resend of the same content; null to send none.",
    ),
  }).strict(),
  create(config, ctx) {
    const client = ctx.http.client(clientOptions(config));
    const plan = ctx.options.mode === "plan";
    const halt = new Halt();
    // The log is per destination; hashed so a token in the URL is never stored.
    const destination = contentHash([config.baseUrl ?? "", config.url]).slice(0, 16);

    function logKey(result: SyncResult): string {
      return `${destination}\u0000${result.item.key}`;
    }

    // The last delivery of an earlier run: the first request waits out the spacing since then.
    const lastKey = destination;
    const interval = rateLimitInterval(config.rateLimit);
    const last = ctx.state.cacheGet(LAST_DELIVERY, lastKey);
    let ready: Promise<void> | undefined;
    function spacedFromLastRun(): Promise<void> {
      const wait = typeof last === "number" ? last + interval - Date.now() : 0;
      ready ??= wait > 0 ? sleep(Math.min(wait, interval), ctx.signal) : Promise.resolve();
      return ready;
    }

    async function send(result: SyncResult): Promise<void> {
      const scope = { ...result.item.data, $key: result.item.key, $data: result.item.data };
      const path = renderPath(config.url, scope);
      const json = config.body === undefined ? result.item.data : renderBody(config.body, scope);
      const headers: Record<string, string> = {};
      if (config.idempotencyHeader !== null) {
        headers[config.idempotencyHeader] = contentHash([
          ctx.pipeline,
          result.item.key,
          result.hash,
        ]);
      }
      await spacedFromLastRun();
      halt.check();
      await client.request({ method: config.method, path, json, headers, signal: halt.signal });
    }

    /** The result with its outcome; `null` when the run was interrupted while it was in flight. */
    async function handle(result: SyncResult): Promise<SyncResult | null> {
      if (!isActionable(result)) return result;
      const delivered = ctx.state.cacheGet(DELIVERY_LOG, logKey(result));
      if (!ctx.options.full && delivered === result.hash) {
        result.outcome = mergeOutcome(result.outcome, "unchanged");
        return result;
      }
      const outcome = delivered === undefined ? "created" : "updated";
      if (plan) {
        result.outcome = mergeOutcome(result.outcome, outcome);
        return result;
      }
      try {
        await send(result);
      } catch (error) {
        // Interrupted (SIGINT/SIGTERM): not delivered as far as we know; the next run resends it.
        if (ctx.signal.aborted && !halt.signal.aborted) return null;
        if (!(error instanceof RecordError) || halt.signal.aborted) throw halt.stop(error);
        result.outcome = "failed";
        result.reason = errorMessage(error);
        return result;
      }
      // Written at once, before the next request: a kill after this line resends nothing.
      ctx.state.cachePut(DELIVERY_LOG, logKey(result), result.hash);
      ctx.state.cachePut(LAST_DELIVERY, lastKey, Date.now());
      result.outcome = mergeOutcome(result.outcome, outcome);
      return result;
    }

    return {
      sync(results) {
        return syncConcurrently(results, config.concurrency, handle, halt);
      },
    };
  },
});
