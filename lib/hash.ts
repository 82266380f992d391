/**
 * Content hashes of records: stable across key order, so a re-read record that
 * did not change hashes the same.
 * @module
 */
import { createHash } from "node:crypto";

/**
 * JSON with object keys sorted at every level (arrays keep their order).
 *
 * Built by `JSON.stringify` with a property list: the list fixes the key order
 * of every object it serializes, so the sorted union of all keys gives each
 * object its keys in sorted order, with no sorted copy of the value. Values
 * with a `toJSON` (Date, Temporal) are written as that.
 */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  return JSON.stringify(value, propertyList(value));
}

function propertyList(value: object): string[] {
  if (!Array.isArray(value) && !hasToJson(value)) {
    const keys = Object.keys(value);
    if (isFlat(value as Record<string, unknown>, keys)) return sortedKeys(keys);
  }
  const all = new Set<string>();
  collectKeys(value, all);
  return [...all].sort();
}

function hasToJson(value: object): boolean {
  return typeof (value as { toJSON?: unknown }).toJSON === "function";
}

function isFlat(value: Record<string, unknown>, keys: string[]): boolean {
  for (let i = 0; i < keys.length; i++) {
    const child = value[keys[i]];
    if (child !== null && typeof child === "object" && !hasToJson(child)) return false;
  }
  return true;
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

// Records of one input share their keys in one order: sort that once.
let lastKeys: string[] = [];
let lastSorted: string[] = [];

function sortedKeys(keys: string[]): string[] {
  if (keys.length === lastKeys.length) {
    let same = true;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== lastKeys[i]) {
        same = false;
        break;
      }
    }
    if (same) return lastSorted;
  }
  lastKeys = keys;
  lastSorted = [...keys].sort();
  return lastSorted;
}

/** SHA-256 (hex, first 32 chars) of the stable JSON of `value`. */
export function contentHash(value: unknown): string {
  return hashJson(stableStringify(value));
}

/** {@linkcode contentHash} of a value whose stable JSON is `json`. */
export function hashJson(json: string): string {
  return createHash("sha256").update(json).digest("hex").slice(0, 32);
}
