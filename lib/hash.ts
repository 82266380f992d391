/**
 * Content hashes of records: stable across key order, so a re-read record that
 * did not change hashes the same.
 * @module
 */
import { createHash } from "node:crypto";
import { flatPicker, ShapeCache } from "./record_shape.ts";

/**
 * JSON with object keys sorted at every level (arrays keep their order).
 *
 * A flat record (no nested objects) is copied with its keys in sorted order
 * by a function compiled for its key list (see lib/record_shape.ts); anything
 * else is copied level by level with sorted keys. Either copy is serialized
 * by plain `JSON.stringify`, V8's fast path. Values with a `toJSON` (Date,
 * Temporal) are written as that.
 */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (!Array.isArray(value) && !hasToJson(value)) {
    const copy = sortedFlatCopy(value as Record<string, unknown>);
    if (copy !== undefined) return JSON.stringify(copy);
  }
  // Nested: a sorted copy at every level, then plain JSON.stringify (a
  // property list takes V8's slow serializer, slower than copying).
  return JSON.stringify(sortedDeepCopy(value));
}

function sortedDeepCopy(value: unknown): unknown {
  if (value === null || typeof value !== "object" || hasToJson(value)) return value;
  if (Array.isArray(value)) return value.map(sortedDeepCopy);
  const record = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of sortedKeys(Object.keys(record))) {
    const child = record[key];
    if (child !== undefined) out[key] = sortedDeepCopy(child);
  }
  return out;
}

/** Sorted key lists by the unsorted list, so objects of one shape sort once. */
const sortedLists = new ShapeCache((keys) => [...keys].sort(), { size: 1024 });

function sortedKeys(keys: string[]): string[] {
  return keys.length < 2 ? keys : sortedLists.get(keys)!;
}

function hasToJson(value: object): boolean {
  return typeof (value as { toJSON?: unknown }).toJSON === "function";
}

// Records of one input share their keys in one order: a sorted copy is
// compiled once per key list. Inputs with ever new key lists stop compiling
// after a budget and take the general path for lists not seen before.
const flatPickers = new ShapeCache((keys) => flatPicker([...keys].sort()), { budget: 256 });

function sortedFlatCopy(value: Record<string, unknown>): Record<string, unknown> | undefined {
  return flatPickers.get(Object.keys(value))?.(value);
}

/** SHA-256 (hex, first 32 chars) of the stable JSON of `value`. */
export function contentHash(value: unknown): string {
  return hashJson(stableStringify(value));
}

/** {@linkcode contentHash} of a value whose stable JSON is `json`. */
export function hashJson(json: string): string {
  return createHash("sha256").update(json).digest("hex").slice(0, 32);
}
