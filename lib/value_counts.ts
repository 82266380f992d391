/**
 * Per-field value counts with bounded memory ("top event types", "cities"),
 * used by report summaries and export statistics.
 * @module
 */
import { stableStringify } from "./hash.ts";
import { getPath } from "./paths.ts";

/** The bucket values beyond the cap are counted in. */
export const OTHER = "(other)";

/**
 * Counts the values of some fields over many records. Each field keeps at
 * most `cap` distinct values; later new values are counted under
 * {@linkcode OTHER}, so memory stays bounded on any input. Array values count
 * each element; `null`, `undefined` and `""` are not counted.
 */
export class ValueCounts {
  readonly #counts = new Map<string, Map<string, number>>();

  constructor(readonly fields: readonly string[], readonly cap = 10_000) {
    for (const field of fields) this.#counts.set(field, new Map());
  }

  /** Counts the fields of one record. */
  add(data: unknown): void {
    for (const field of this.fields) {
      const value = getPath(data, field);
      const values = Array.isArray(value) ? value : [value];
      for (const one of values) this.#count(field, one);
    }
  }

  #count(field: string, value: unknown): void {
    if (value === null || value === undefined || value === "") return;
    const counts = this.#counts.get(field) as Map<string, number>;
    let label = typeof value === "string" ? value : stableStringify(value);
    if (!counts.has(label) && counts.size >= this.cap) label = OTHER;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }

  /**
   * The values of `field`, most frequent first (ties by value), at most `limit`.
   * {@linkcode OTHER} is ranked like any value.
   */
  top(field: string, limit = Infinity): [string, number][] {
    const counts = this.#counts.get(field);
    if (!counts) return [];
    return [...counts].sort(byCountThenValue).slice(0, limit);
  }

  /** Every field's counts as `{ field: { value: count } }`, most frequent first. */
  toJSON(): Record<string, Record<string, number>> {
    return Object.fromEntries(
      this.fields.map((field) => [field, Object.fromEntries(this.top(field))]),
    );
  }
}

function byCountThenValue(a: [string, number], b: [string, number]): number {
  return b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}
