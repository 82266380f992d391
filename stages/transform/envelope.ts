/**
 * `transform.envelope`: wraps each record in a template, e.g. a webhook event
 * `{ "id": "{$uuid}", "type": "ticket.created", "data": { "ticket": "{$record}" } }`.
 *
 * Placeholders: `{$record}` (the whole record), `{$key}` (the record's
 * identity, from `keyFrom`), `{$uuid}` (a UUID v5 of the pipeline's name and
 * that identity: the same record always gets the same id, so a re-sent event
 * is recognisably the same one), `{$now}` (the run's start, ISO 8601 UTC) and
 * `{field}` paths of the record. A string that is exactly one placeholder keeps
 * the value's type (a missing field leaves its key out); other strings are
 * filled as text. With `merge`, the template's fields are set on a copy of the
 * record instead (e.g. an `ingested_at` stamp).
 *
 * A record whose identity is missing is dead-lettered.
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { templateFields } from "../../lib/paths.ts";
import { keyOf, keySpecOf } from "../../lib/record_key.ts";
import { defineStage, type Item } from "../../lib/stage.ts";
import { renderBody } from "../../lib/http_sink.ts";

/** The namespace of ticketsync's `{$uuid}` ids (a fixed random UUID). */
export const ENVELOPE_NAMESPACE = "3c4ad6a1-5e0f-4f33-9c59-0d6c3b7f2e21";

/** A name-based UUID (version 5, SHA-1) of `name` in `namespace` (RFC 9562). */
export function uuidV5(name: string, namespace: string = ENVELOPE_NAMESPACE): string {
  const hex = namespace.replaceAll("-", "");
  if (!/^[0-9a-f]{32}$/i.test(hex)) {
    throw new Error(`Cannot make a UUID: namespace "${namespace}" is not a UUID`);
  }
  const space = Uint8Array.from(hex.match(/../g)!, (pair) => parseInt(pair, 16));
  const bytes = new Uint8Array(createHash("sha1").update(space).update(name, "utf8").digest())
    .slice(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x50; // version 5
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC variant
  const out = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${out.slice(0, 8)}-${out.slice(8, 12)}-${out.slice(12, 16)}-${out.slice(16, 20)}-${
    out.slice(20)
  }`;
}

const SPECIAL = ["$record", "$key", "$uuid", "$now"];

/** Reports each unknown `{$name}` placeholder of a template at the path of its string. */
function checkPlaceholders(template: unknown, at: PropertyKey[], ctx: z.RefinementCtx): void {
  if (typeof template === "string") {
    for (const field of templateFields(template)) {
      if (!field.startsWith("$") || SPECIAL.includes(field)) continue;
      ctx.addIssue({
        code: "custom",
        path: at,
        message: `unknown placeholder "{${field}}"; expected {field} or one of ${
          SPECIAL.map((s) => `{${s}}`).join(", ")
        }`,
        input: undefined,
      });
    }
  } else if (Array.isArray(template)) {
    template.forEach((value, index) => checkPlaceholders(value, [...at, index], ctx));
  } else if (template !== null && typeof template === "object") {
    for (const [key, value] of Object.entries(template)) {
      checkPlaceholders(value, [...at, key], ctx);
    }
  }
}

/** The stage definition. */
export const stage = defineStage({
  kind: "transform",
  name: "envelope",
  summary:
    "Wrap each record in a template (webhook events): {$record}, {$uuid} stable per record, {$key}, {$now}, {field}.",
  config: z.object({
    template: z.unknown().refine((value) => value !== undefined, "expected a JSON value")
      .describe(
        'The output record: a JSON object whose strings may hold placeholders, e.g. { "id": "{$uuid}", "sellerId": "{sellerId}", "type": "ticket.created", "data": { "ticket": "{$record}" } }.',
      ),
    keyFrom: z.string().min(1).default("id").describe(
      'The record\'s identity for {$key} and {$uuid}: a field path ("_id") or a template ("{tenant}:{id}").',
    ),
    merge: z.boolean().default(false).describe(
      "false: the template replaces the record; true: the template's fields are set on a copy of the record.",
    ),
  }).strict().superRefine(function checkTemplate(config, ctx) {
    const template = config.template;
    // A missing template has its problem reported already.
    if (template === undefined) return;
    checkPlaceholders(template, ["template"], ctx);
    if (template === null || typeof template !== "object" || Array.isArray(template)) {
      ctx.addIssue({
        code: "custom",
        path: ["template"],
        message: `expected an object`,
        input: template,
      });
    }
  }),
  create(config, ctx) {
    const template = config.template;
    const keySpec = keySpecOf(config.keyFrom);
    const now = ctx.clock.now().toString();

    return {
      async *process(items: AsyncIterable<Item>): AsyncIterable<Item> {
        for await (const item of items) {
          const found = keyOf(keySpec, item.data);
          if ("reason" in found) {
            // An object id would give every such record one "[object Object]" key and uuid.
            ctx.deadLetter(item, `${found.reason} for the envelope`);
            continue;
          }
          const key = found.key;
          const scope = {
            ...item.data,
            $record: item.data,
            $key: key,
            $uuid: uuidV5(`${ctx.pipeline}:${key}`),
            $now: now,
          };
          const filled = renderBody(template, scope) as Record<string, unknown>;
          const data = config.merge ? { ...item.data, ...filled } : filled;
          yield { ...item, data };
        }
      },
    };
  },
});
