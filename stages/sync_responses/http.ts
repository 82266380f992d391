/**
 * `sync-responses.http`: syncs each synced ticket's child records (utility
 * member responses) to a child collection of a REST API whose URL holds the
 * parent's remote id.
 *
 * Per parent: list the remote children, create the missing ones, update the
 * changed ones (compared on configured fields), never delete (the full
 * response history is kept). Children are matched by key fields. A child that
 * fails fails its parent, with a reason naming the child. A parent whose
 * content hash is unchanged is not looked at: its hash covers its children.
 *
 * Plan mode only lists, and reports what would be created or updated.
 * @module
 */
import { z } from "zod";
import { errorMessage, RecordError } from "../../lib/errors.ts";
import { contentHash, stableStringify } from "../../lib/hash.ts";
import { mergeOutcome, needsChildSync } from "../../lib/outcome.ts";
import { getPath } from "../../lib/paths.ts";
import {
  type ChildStats,
  type ChildSyncRuntime,
  defineStage,
  type FieldChange,
  type SyncResult,
} from "../../lib/stage.ts";
import {
  fieldChanges,
  Halt,
  httpSinkOptions,
  listOf,
  listSchema,
  maybeJson,
  remoteIdOf,
  renderBody,
  renderPath,
  renderQuery,
  syncConcurrently,
  writeSchema,
} from "../../lib/http_sink.ts";
import { clientOptions } from "../../lib/http.ts";

/** One child of the record, ready to compare and send. */
interface Child {
  key: string;
  data: Record<string, unknown>;
  hash: string;
}

/** A problem with the record's children themselves; fails the parent. */
class ChildError extends RecordError {}

/** The sink. */
export const stage = defineStage({
  kind: "sync-responses",
  name: "http",
  summary:
    "Sync each record's child records (responses) to a REST child collection: create missing, update changed, never delete.",
  config: z.object({
    ...httpSinkOptions,
    list: listSchema.describe(
      'How to list a parent\'s remote children: { "path": "/api/tickets/{$remoteId}/responses", "list": "items" }.',
    ),
    create: writeSchema(["POST", "PUT"], { method: "POST" }).describe(
      'How to create a child: { "method": "POST", "path": "/api/tickets/{$remoteId}/responses" }; the body defaults to the child itself.',
    ),
    update: writeSchema(["PUT", "PATCH"], { method: "PUT" }).describe(
      'How to update a child: { "method": "PUT", "path": "/api/tickets/{$remoteId}/responses/{$childId}" }; the body defaults to the create body.',
    ),
    from: z.string().min(1).default("responses").describe(
      "Dotted path of the array of children in each record; missing or null means no children.",
    ),
    key: z.array(z.string().min(1)).min(1).default(["member_code", "responded_at"]).describe(
      "Fields of a child that identify it within its parent.",
    ),
    remoteKey: z.array(z.string().min(1)).min(1).optional().describe(
      "The same fields in the remote children, when named differently (default: key).",
    ),
    idPath: z.string().min(1).default("id").describe(
      "Dotted path of a child's remote id in list and create answers.",
    ),
    compare: z.array(z.string().min(1)).optional().describe(
      "Fields compared to decide whether a remote child needs an update (dotted paths); default: every top-level field of the body.",
    ),
    idempotencyHeader: z.string().min(1).nullable().default("Idempotency-Key").describe(
      "Header carrying a key derived from pipeline, parent key, child key and content on creates; null to send none.",
    ),
    listNewParents: z.boolean().default(false).describe(
      "Also list the children of a parent this run just created (for backends that create children from the parent's body); by default a new parent has none and the list request is saved.",
    ),
  }).strict().superRefine(function checkRemoteKey(config, ctx) {
    if (config.remoteKey !== undefined && config.remoteKey.length !== config.key.length) {
      ctx.addIssue({
        code: "custom",
        path: ["remoteKey"],
        message: `expected ${config.key.length} field${
          config.key.length === 1 ? "" : "s"
        } (one per "key" field), got ${config.remoteKey.length}`,
        input: undefined,
      });
    }
  }),
  create(config, ctx) {
    const client = ctx.http.client(clientOptions(config));
    const plan = ctx.options.mode === "plan";
    const remoteKey = config.remoteKey ?? config.key;
    const halt = new Halt();
    const stats: ChildStats = {
      parents: 0,
      children: 0,
      created: 0,
      updated: 0,
      unchanged: 0,
      failedParents: 0,
    };

    function keyOf(object: unknown, fields: readonly string[], label: string): string {
      return fields.map((field) => {
        const part = getPath(object, field);
        if (part === undefined || part === null || part === "") {
          throw new ChildError(`${label}: missing key field "${field}"`);
        }
        return typeof part === "string" ? part : stableStringify(part);
      }).join("@");
    }

    /** The record's children; a duplicate key keeps the last occurrence. */
    function readChildren(data: Record<string, unknown>): Child[] {
      const list = getPath(data, config.from);
      if (list === undefined || list === null) return [];
      if (!Array.isArray(list)) throw new ChildError(`"${config.from}" is not a list`);
      const children = new Map<string, Child>();
      list.forEach((value, index) => {
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw new ChildError(`${config.from}[${index}]: expected an object`);
        }
        const data = value as Record<string, unknown>;
        const key = keyOf(data, config.key, `${config.from}[${index}]`);
        children.delete(key);
        children.set(key, { key, data, hash: contentHash(data) });
      });
      return [...children.values()];
    }

    /** The remote children of a parent, by key (the first one of a key wins). */
    async function listRemote(
      parentId: string,
      result: SyncResult,
    ): Promise<Map<string, unknown>> {
      const scope = { ...result.item.data, $key: result.item.key, $remoteId: parentId };
      const path = renderPath(config.list.path, scope);
      const response = await client.request({
        method: "GET",
        path,
        query: renderQuery(config.list.query, scope),
        signal: halt.signal,
      });
      const remote = new Map<string, unknown>();
      for (const [index, object] of listOf(response, config.list.list, `GET ${path}`).entries()) {
        let key: string;
        try {
          key = keyOf(object, remoteKey, `GET ${path} item ${index}`);
        } catch {
          continue; // A remote child without our key fields is not one of ours.
        }
        if (!remote.has(key)) remote.set(key, object);
      }
      return remote;
    }

    function childScope(
      child: Child,
      result: SyncResult,
      parentId: string | undefined,
      childId?: string,
    ): Record<string, unknown> {
      return {
        ...child.data,
        $data: child.data,
        $parent: result.item.data,
        $key: result.item.key,
        $remoteId: parentId,
        $childId: childId,
      };
    }

    function bodyOf(template: unknown, scope: Record<string, unknown>, child: Child): unknown {
      return template === undefined ? child.data : renderBody(template, scope);
    }

    async function createChild(child: Child, result: SyncResult, parentId: string) {
      const scope = childScope(child, result, parentId);
      const path = renderPath(config.create.path, scope);
      const headers: Record<string, string> = {};
      if (config.idempotencyHeader !== null) {
        // With the parent's id: children of a parent re-created after a remote
        // deletion are new creates, not replays of the first ones.
        headers[config.idempotencyHeader] = contentHash([
          ctx.pipeline,
          result.item.key,
          child.key,
          child.hash,
          parentId,
        ]);
      }
      halt.check();
      const response = await client.request({
        method: config.create.method,
        path,
        json: bodyOf(config.create.body, scope, child),
        headers,
        signal: halt.signal,
      });
      return remoteIdOf(maybeJson(response), config.idPath);
    }

    async function updateChild(
      child: Child,
      result: SyncResult,
      parentId: string,
      childId: string,
    ): Promise<void> {
      const scope = childScope(child, result, parentId, childId);
      const path = renderPath(config.update.path, scope);
      halt.check();
      await client.request({
        method: config.update.method,
        path,
        json: bodyOf(config.update.body ?? config.create.body, scope, child),
        signal: halt.signal,
      });
    }

    /** Syncs (or plans) the children of one parent; throws ChildError-like RecordErrors. */
    async function handleParent(result: SyncResult): Promise<void> {
      const children = readChildren(result.item.data);
      stats.parents++;
      stats.children += children.length;
      const parentId = result.remoteId ?? result.previous?.remoteId ?? undefined;
      const counts = { created: 0, updated: 0, unchanged: 0 };
      const changes: FieldChange[] = [];
      const failures: string[] = [];

      if (parentId === undefined) {
        // In plan mode a parent about to be created has no remote id yet: all its children are new.
        if (!plan || result.outcome !== "created") {
          throw new RecordError(
            `Cannot sync ${config.from}: the ticket has no remote id (sync-tickets gave none)`,
          );
        }
        counts.created = children.length;
      } else if (children.length > 0) {
        // A ticket this run just created has no children yet: no need to list them.
        const remote = result.outcome === "created" && !plan && !config.listNewParents
          ? new Map<string, unknown>()
          : await listRemote(parentId, result);
        for (const child of children) {
          const label = `${config.from}["${child.key}"]`;
          const existing = remote.get(child.key);
          try {
            if (existing === undefined) {
              counts.created++;
              if (plan) changes.push({ path: label, before: null, after: child.data });
              else await createChild(child, result, parentId);
              continue;
            }
            const scope = childScope(child, result, parentId, remoteIdOf(existing, config.idPath));
            const body = bodyOf(config.update.body ?? config.create.body, scope, child);
            const diff = fieldChanges(existing, body, config.compare, `${label}.`);
            if (diff.length === 0 && !ctx.options.full) {
              counts.unchanged++;
              continue;
            }
            counts.updated++;
            if (plan) {
              changes.push(...diff);
              continue;
            }
            const childId = remoteIdOf(existing, config.idPath);
            if (childId === undefined) {
              throw new RecordError(`the remote child has no id at "${config.idPath}"`);
            }
            await updateChild(child, result, parentId, childId);
          } catch (error) {
            if (!(error instanceof RecordError) || halt.signal.aborted) throw error;
            failures.push(`response "${child.key}": ${errorMessage(error)}`);
          }
        }
      }
      stats.created += counts.created;
      stats.updated += counts.updated;
      stats.unchanged += counts.unchanged;
      if (failures.length > 0) {
        const more = failures.length > 1 ? ` (and ${failures.length - 1} more responses)` : "";
        throw new RecordError(`${failures[0]}${more}`);
      }
      const touched = counts.created + counts.updated > 0;
      result.outcome = mergeOutcome(result.outcome, touched ? "updated" : "unchanged");
      if (changes.length > 0) result.changes = [...(result.changes ?? []), ...changes];
    }

    /** Whether the parent's children need a look at all. */
    const needsWork = (result: SyncResult) => needsChildSync(result, ctx.options);

    /** The result with its outcome; `null` when the run was interrupted while it was in flight. */
    async function handle(result: SyncResult): Promise<SyncResult | null> {
      if (!needsWork(result)) return result;
      try {
        await handleParent(result);
      } catch (error) {
        if (ctx.signal.aborted && !halt.signal.aborted) return null;
        if (!(error instanceof RecordError) || halt.signal.aborted) throw halt.stop(error);
        stats.failedParents++;
        result.outcome = mergeOutcome(result.outcome, "failed");
        result.reason = errorMessage(error);
      }
      return result;
    }

    const runtime: ChildSyncRuntime = {
      sync(results: AsyncIterable<SyncResult>): AsyncIterable<SyncResult> {
        return syncConcurrently(results, config.concurrency, handle, halt);
      },
      stats(): ChildStats {
        return { ...stats };
      },
    };
    return runtime;
  },
});
