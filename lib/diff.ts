/**
 * Field-level differences between what a destination holds and a record, for
 * `plan` output ("update with a field diff").
 * @module
 */
import { stableStringify } from "./hash.ts";
import type { FieldChange } from "./stage.ts";

/**
 * The top-level fields that differ between `before` and `after` (compared as
 * stable JSON, so key order inside nested values does not matter), sorted by
 * name. A missing field counts as `null` (absent and null are no change).
 */
export function diffFields(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  prefix = "",
): FieldChange[] {
  const changes: FieldChange[] = [];
  const fields = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const field of [...fields].sort()) {
    const was = before[field] ?? null;
    const now = after[field] ?? null;
    if (stableStringify(was) !== stableStringify(now)) {
      changes.push({ path: prefix + field, before: was, after: now });
    }
  }
  return changes;
}
