/**
 * Content hashes of records: stable across key order, so a re-read record that
 * did not change hashes the same.
 * @module
 */
import { createHash } from "node:crypto";
import { type FlatPicker, flatPicker } from "./record_shape.ts";

/**
 * JSON with object keys sorted at every level (arrays keep their order).
 *
 * A flat record (no nested objects) is copied with its keys in sorted order
 * by a function compiled for its key list (see lib/record_shape.ts), then
 * serialized by plain `JSON.stringify`, V8's fast path. Anything else goes
 * through `JSON.stringify` with a property list: the list fixes the key order
 * of every object it serializes, so the sorted union of all keys gives each
 * object its keys in sorted order. Values with a `toJSON` (Date, Temporal) are
 * written as that.
 */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (!Array.isArray(value) && !hasToJson(value)) {
    const copy = sortedFlatCopy(value as Record<string, unknown>);
    if (copy !== undefined) return JSON.stringify(copy);
  }
  return JSON.stringify(value, propertyList(value));
}

function propertyList(value: object): string[] {
  const all = new Set<string>();
  collectKeys(value, all);
  return [...all].sort();
}

function hasToJson(value: object): boolean {
  return typeof (value as { toJSON?: unknown }).toJSON === "function";
}

function collectKeys(value: unknown, into: Set<string>): void {
  if (value === null || typeof value !== "object" || hasToJson(value)) return;
  if (Array.isArray(value)) {
    for (const element of value) collectKeys(element, into);
    return;
  }
  for (const key of Object.keys(value)) {
    into.add(key);
    collectKeys((value as Record<string, unknown>)[key], into);
  }
}

// Records of one input share their keys in one order: a sorted copy is
// compiled once per key list. Inputs with ever new key lists stop compiling
// after a budget and take the general path for lists not seen before.
const COMPILE_BUDGET = 256;
const CACHE_SIZE = 64;
const pickers = new Map<string, FlatPicker | undefined>();
let compiled = 0;
let lastKeys: string[] = [];
let lastPicker: FlatPicker | undefined;

function sortedFlatCopy(value: Record<string, unknown>): Record<string, unknown> | undefined {
  const keys = Object.keys(value);
  if (!sameKeys(keys, lastKeys)) {
    const id = keys.join("\u0000");
    let picker = pickers.get(id);
    if (picker === undefined && !pickers.has(id)) {
      if (compiled >= COMPILE_BUDGET) return undefined;
      compiled++;
      picker = flatPicker([...keys].sort());
      if (pickers.size >= CACHE_SIZE) pickers.clear();
      pickers.set(id, picker);
    }
    lastKeys = keys;
    lastPicker = picker;
  }
  return lastPicker?.(value);
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** SHA-256 (hex, first 32 chars) of the stable JSON of `value`. */
export function contentHash(value: unknown): string {
  return hashJson(stableStringify(value));
}

/** {@linkcode contentHash} of a value whose stable JSON is `json`. */
export function hashJson(json: string): string {
  return createHash("sha256").update(json).digest("hex").slice(0, 32);
}
