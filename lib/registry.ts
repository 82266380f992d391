/**
 * A registry over a list of stage definitions: lookup by `use`, the composed
 * config schema, and the JSON Schema editors use. It is given the list
 * (`stages/mod.ts`); it names no stage itself.
 * @module
 */
import { z } from "zod";
import { STAGE_KINDS, type StageDefinition, stageRef } from "./stage.ts";

/** Looks stages up by their `use` reference. */
export class Registry {
  readonly #byRef = new Map<string, StageDefinition>();

  constructor(readonly stages: readonly StageDefinition[]) {
    for (const stage of stages) {
      const ref = stageRef(stage);
      if (this.#byRef.has(ref)) {
        throw new Error(`Cannot register stage: "${ref}" is registered twice`);
      }
      this.#byRef.set(ref, stage);
    }
  }

  /** Every `use` reference, sorted by kind order then name. */
  refs(): string[] {
    return [...this.#byRef.keys()].sort((a, b) => {
      const kindA = STAGE_KINDS.indexOf(a.split(".")[0] as typeof STAGE_KINDS[number]);
      const kindB = STAGE_KINDS.indexOf(b.split(".")[0] as typeof STAGE_KINDS[number]);
      return kindA - kindB || a.localeCompare(b);
    });
  }

  /** The stage a `use` names, or `undefined`. */
  get(ref: string): StageDefinition | undefined {
    return this.#byRef.get(ref);
  }

  /** The schema of one stage entry in a config: its own config plus `use` and `id`. */
  entrySchema(stage: StageDefinition): z.ZodObject {
    return stage.config.extend({
      use: z.literal(stageRef(stage)).describe(stage.summary),
      id: z.string().optional().describe(
        "A name for this stage in logs and the summary (default: its position and `use`).",
      ),
    }).strict().describe(stage.summary);
  }

  /** A union of every stage entry schema (for the JSON Schema only: validation goes entry by entry). */
  stageUnion(): z.ZodType {
    const entries = this.refs().map((ref) => this.entrySchema(this.get(ref)!));
    if (entries.length === 0) return z.never();
    if (entries.length === 1) return entries[0];
    return z.discriminatedUnion(
      "use",
      entries as unknown as [z.ZodObject, z.ZodObject, ...z.ZodObject[]],
    );
  }
}

/** The closest candidate to `value` by edit distance, if it is close enough to be a likely typo. */
export function closest(value: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(value.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(value.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}
