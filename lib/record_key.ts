/**
 * A record's identity from a key spec: a field path (`ticket_number`) or a
 * template of fields (`{tenant_id}:{id}`), as the pipeline's `key` and
 * `transform.envelope`'s `keyFrom` give it.
 * @module
 */
import { getPath, renderTemplate, templateFields } from "./paths.ts";

/** A key spec, parsed once. */
export interface KeySpec {
  text: string;
  template: boolean;
  fields: string[];
}

/** Parses a key spec: a template when it holds `{`. */
export function keySpecOf(text: string): KeySpec {
  const template = text.includes("{");
  return { text, template, fields: template ? templateFields(text) : [text] };
}

/** A record's key by `spec`, or why it has none (missing, or an object or array). */
export function keyOf(spec: KeySpec, data: unknown): { key: string } | { reason: string } {
  let part: unknown;
  for (const field of spec.fields) {
    part = getPath(data, field);
    // An object or array is no identity ("[object Object]" would make every such record one key).
    if (part !== null && typeof part === "object") {
      return {
        reason: `invalid key: ${JSON.stringify(field)} is ${
          Array.isArray(part) ? "an array" : "an object"
        }, expected text or a number`,
      };
    }
  }
  // A plain path's value is the one part just read.
  const value = spec.template ? renderTemplate(spec.text, data) : part;
  const key = value === undefined || value === null ? "" : String(value).trim();
  return key === "" || (spec.template && /^[:\-_/ ]*$/.test(key))
    ? { reason: `missing key ${JSON.stringify(spec.text)}` }
    : { key };
}
