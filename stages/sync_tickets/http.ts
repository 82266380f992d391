/**
 * `sync-tickets.http`: create-or-update records against any REST backend,
 * configured rather than coded.
 *
 * Per record: nothing is sent when its content hash equals the last synced
 * one. With a remote id in the ledger, the record is updated directly (a 404
 * means the remote row was deleted: look it up again, then create). Otherwise
 * the record is looked up by its natural key, then created or updated. The
 * remote id read from the answers is kept in the ledger.
 *
 * A killed run never creates twice: a record whose create was sent but not
 * committed to the ledger is found by the next run's lookup, and every create
 * carries an `Idempotency-Key` derived from the pipeline, key and content hash
 * so a retried POST (dropped connection) is recognised by backends that honour it.
 *
 * Plan mode sends only lookups (GET) and reports created, updated (with the
 * fields that would change) or unchanged.
 * @module
 */
import { z } from "zod";
import { errorMessage, RecordError } from "../../lib/errors.ts";
import { contentHash, stableStringify } from "../../lib/hash.ts";
import {
  fieldChanges,
  Halt,
  httpSinkOptions,
  listOf,
  lookupSchema,
  maybeJson,
  NamedQueue,
  remoteIdOf,
  renderBody,
  renderPath,
  renderQuery,
  syncConcurrently,
  writeSchema,
} from "../../lib/http_sink.ts";
import { isActionable, isUnchanged, mergeOutcome } from "../../lib/outcome.ts";
import { clientOptions, excerpt, type HttpResponse } from "../../lib/http.ts";
import { deletePath } from "../../lib/paths.ts";
import { defineStage, type SyncResult } from "../../lib/stage.ts";

/** What a lookup found. */
interface Found {
  id: string;
  object: unknown;
}

/** The sink. */
export const stage = defineStage({
  kind: "sync-tickets",
  name: "http",
  summary:
    "Create or update each record through a REST API: lookup by natural key, POST, PUT or PATCH; remote ids kept.",
  config: z.object({
    ...httpSinkOptions,
    lookup: lookupSchema.describe(
      'How to find the remote record by its natural key: { "path": "/api/tickets/by-number/{ticket_number}" } (404 = absent) or { "path": "/api/tickets", "query": { "ticket_number": "{ticket_number}" }, "list": "items" } (empty list = absent; more than one match fails the record).',
    ),
    create: writeSchema(["POST", "PUT"], { method: "POST" }).describe(
      'How to create: { "method": "POST", "path": "/api/tickets" } and an optional body template.',
    ),
    update: writeSchema(["PUT", "PATCH"], { method: "PUT" }).describe(
      'How to update: { "method": "PUT", "path": "/api/tickets/{$remoteId}" } (PUT overwrites in full; PATCH sends the same body). The body defaults to the create body.',
    ),
    idPath: z.string().min(1).default("id").describe(
      "Dotted path of the remote id in lookup and create answers.",
    ),
    exclude: z.array(z.string().min(1)).default([]).describe(
      'Fields of the record left out of the default body, e.g. ["responses"] when sync-responses.http sends them.',
    ),
    compare: z.array(z.string().min(1)).optional().describe(
      "Fields compared for plan diffs (dotted paths); default: every top-level field of the body.",
    ),
    idempotencyHeader: z.string().min(1).nullable().default("Idempotency-Key").describe(
      "Header carrying a key derived from pipeline, record key and content hash on creates, so a retried POST does not create twice; null to send none.",
    ),
  }).strict(),
  create(config, ctx) {
    const client = ctx.http.client(clientOptions(config));
    const plan = ctx.options.mode === "plan";
    const halt = new Halt();
    const queue = new NamedQueue();

    function scopeOf(result: SyncResult, remoteId?: string): Record<string, unknown> {
      return { ...result.item.data, $key: result.item.key, $remoteId: remoteId };
    }

    function bodyOf(template: unknown, result: SyncResult, remoteId?: string): unknown {
      if (template === undefined) {
        if (config.exclude.length === 0) return result.item.data;
        const copy = structuredClone(result.item.data);
        for (const path of config.exclude) deletePath(copy, path);
        return copy;
      }
      const scope = scopeOf(result, remoteId);
      return renderBody(template, { ...scope, $data: result.item.data });
    }

    /** Finds the remote record by its natural key; `null` when absent. */
    async function lookup(result: SyncResult): Promise<Found | null> {
      const scope = scopeOf(result);
      const path = renderPath(config.lookup.path, scope);
      const query = renderQuery(config.lookup.query, scope);
      const listed = config.lookup.list !== undefined;
      const response = await client.request({
        method: "GET",
        path,
        query,
        accept: listed ? [] : [404],
        signal: halt.signal,
      });
      const what = `Lookup GET ${path}`;
      if (!listed) {
        if (response.status === 404) return null;
        const object = response.json();
        if (object === null) return null;
        return { id: requireId(object, what, response), object };
      }
      const matches = listOf(response, config.lookup.list!, what);
      if (matches.length === 0) return null;
      if (matches.length > 1) {
        const ids = matches.map((match) => `"${remoteIdOf(match, config.idPath) ?? "?"}"`);
        throw new RecordError(
          `${what} found ${matches.length} remote records for key "${result.item.key}": ids ${
            ids.join(", ")
          }; resolve the duplicates`,
        );
      }
      return { id: requireId(matches[0], what, response), object: matches[0] };
    }

    function requireId(object: unknown, what: string, response: HttpResponse): string {
      const id = remoteIdOf(object, config.idPath);
      if (id === undefined) {
        throw new RecordError(
          `${what} answered ${response.status} without an id at "${config.idPath}": ${
            excerpt(response.text)
          }`,
          response.status,
        );
      }
      return id;
    }

    /**
     * Creates the remote record. `gone`: the remote id that answered 404 (the
     * record was deleted remotely); it goes into the idempotency key, or a
     * backend would replay the first create's answer, naming the deleted row.
     */
    async function create(result: SyncResult, gone?: string): Promise<string> {
      const path = renderPath(config.create.path, scopeOf(result));
      const json = bodyOf(config.create.body, result);
      const headers: Record<string, string> = {};
      if (config.idempotencyHeader !== null) {
        headers[config.idempotencyHeader] = contentHash([
          ctx.pipeline,
          result.item.key,
          result.hash,
          ...(gone === undefined ? [] : [gone]),
        ]);
      }
      halt.check();
      const response = await client.request({
        method: config.create.method,
        path,
        json,
        headers,
        signal: halt.signal,
      });
      return requireId(maybeJson(response), `${config.create.method} ${path}`, response);
    }

    /** Updates the remote record; `false` when it answered 404 (deleted remotely). */
    async function update(result: SyncResult, remoteId: string): Promise<boolean> {
      const path = renderPath(config.update.path, scopeOf(result, remoteId));
      const json = bodyOf(config.update.body ?? config.create.body, result, remoteId);
      halt.check();
      const response = await client.request({
        method: config.update.method,
        path,
        json,
        accept: [404],
        signal: halt.signal,
      });
      return response.status !== 404;
    }

    async function lookupAndWrite(result: SyncResult, gone?: string): Promise<void> {
      const found = await lookup(result);
      if (found === null) {
        result.remoteId = await create(result, gone);
        result.outcome = mergeOutcome(result.outcome, "created");
        return;
      }
      if (!await update(result, found.id)) {
        throw new RecordError(
          `${config.update.method} of remote id "${found.id}" answered 404 right after the lookup found it`,
          404,
        );
      }
      result.remoteId = found.id;
      result.outcome = mergeOutcome(result.outcome, "updated");
    }

    async function write(result: SyncResult): Promise<void> {
      const known = result.previous?.remoteId ?? undefined;
      if (known !== undefined) {
        if (await update(result, known)) {
          result.remoteId = known;
          result.outcome = mergeOutcome(result.outcome, "updated");
          return;
        }
        ctx.log.info("Remote id {remoteId} of {key} is gone (404): looking it up again", {
          remoteId: known,
          key: result.item.key,
        });
      }
      await lookupAndWrite(result, known);
    }

    async function planOne(result: SyncResult): Promise<void> {
      const found = await lookup(result);
      if (found === null) {
        result.outcome = mergeOutcome(result.outcome, "created");
        return;
      }
      result.remoteId = found.id;
      result.outcome = mergeOutcome(result.outcome, "updated");
      const body = bodyOf(config.update.body ?? config.create.body, result, found.id);
      result.changes = [
        ...(result.changes ?? []),
        ...fieldChanges(found.object, body, config.compare),
      ];
    }

    /** The name two records share when they would look up the same remote row. */
    function lookupName(result: SyncResult): string {
      try {
        const scope = scopeOf(result);
        return stableStringify([
          renderPath(config.lookup.path, scope),
          renderQuery(config.lookup.query, scope),
        ]);
      } catch {
        return `key:${result.item.key}`;
      }
    }

    /** The result with its outcome; `null` when the run was interrupted while it was in flight. */
    async function handle(result: SyncResult): Promise<SyncResult | null> {
      if (!isActionable(result)) return result;
      if (isUnchanged(result, ctx.options)) {
        result.outcome = mergeOutcome(result.outcome, "unchanged");
        if (result.previous?.remoteId) result.remoteId = result.previous.remoteId;
        return result;
      }
      try {
        await queue.run(lookupName(result), () => plan ? planOne(result) : write(result));
      } catch (error) {
        // Interrupted (SIGINT/SIGTERM): not committed, so the next run redoes it.
        if (ctx.signal.aborted && !halt.signal.aborted) return null;
        if (!(error instanceof RecordError) || halt.signal.aborted) throw halt.stop(error);
        result.outcome = "failed";
        result.reason = errorMessage(error);
      }
      return result;
    }

    return {
      sync(results) {
        return syncConcurrently(results, config.concurrency, handle, halt);
      },
    };
  },
});
