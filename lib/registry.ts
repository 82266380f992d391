/**
 * A registry over stage definitions: lookup by `use`, the composed config
 * schema, and the JSON Schema editors use. It is given the definitions, or
 * loaders to run when a config uses a stage (`stages/mod.ts`); it names no
 * stage itself.
 * @module
 */
import { z } from "zod";
import { STAGE_KINDS, type StageDefinition, stageRef } from "./stage.ts";

/** A stage entry's optional `id`; config validation checks it with this schema too. */
export const stageEntryId = z.string().optional().describe(
  "A name for this stage in logs and the summary (default: its position and `use`).",
);

/** Loads one stage's definition (see `stages/mod.ts`). */
export type StageLoader = () => Promise<StageDefinition>;

/** Looks stages up by their `use` reference. */
export class Registry {
  readonly #byRef = new Map<string, StageDefinition>();
  readonly #loaders: Readonly<Record<string, StageLoader>>;

  /**
   * `stages` are registered now; `loaders` (by `use` reference) when
   * {@linkcode load} or {@linkcode loadAll} asks for them.
   */
  constructor(
    stages: readonly StageDefinition[],
    loaders: Readonly<Record<string, StageLoader>> = {},
  ) {
    this.#loaders = loaders;
    for (const stage of stages) this.#register(stage);
  }

  #register(stage: StageDefinition): void {
    const ref = stageRef(stage);
    if (this.#byRef.has(ref)) {
      throw new Error(`Cannot register stage: "${ref}" is registered twice`);
    }
    this.#byRef.set(ref, stage);
  }

  /** Loads the stages `refs` name that have a loader and are not loaded yet; ignores others. */
  async load(refs: Iterable<string>): Promise<void> {
    const wanted = [...new Set(refs)].filter((ref) =>
      !this.#byRef.has(ref) && Object.hasOwn(this.#loaders, ref)
    );
    const loaded = await Promise.all(wanted.map((ref) => this.#loaders[ref]()));
    loaded.forEach((stage, index) => {
      if (stageRef(stage) !== wanted[index]) {
        throw new Error(
          `Cannot register stage: the loader for "${wanted[index]}" gave "${stageRef(stage)}"`,
        );
      }
      this.#register(stage);
    });
  }

  /** Loads every stage (for docs and the JSON Schema). */
  loadAll(): Promise<void> {
    return this.load(Object.keys(this.#loaders));
  }

  /** The stage definitions loaded so far. */
  get stages(): StageDefinition[] {
    return [...this.#byRef.values()];
  }

  /** Every `use` reference, loaded or not, sorted by kind order then name. */
  refs(): string[] {
    const all = new Set([...this.#byRef.keys(), ...Object.keys(this.#loaders)]);
    return [...all].sort((a, b) => {
      const kindA = STAGE_KINDS.indexOf(a.split(".")[0] as typeof STAGE_KINDS[number]);
      const kindB = STAGE_KINDS.indexOf(b.split(".")[0] as typeof STAGE_KINDS[number]);
      return kindA - kindB || a.localeCompare(b);
    });
  }

  /** The stage a `use` names, or `undefined` (also when it is not loaded yet). */
  get(ref: string): StageDefinition | undefined {
    return this.#byRef.get(ref);
  }

  /** The schema of one stage entry in a config: its own config plus `use` and `id`. */
  entrySchema(stage: StageDefinition): z.ZodObject {
    return stage.config.extend({
      use: z.literal(stageRef(stage)).describe(stage.summary),
      id: stageEntryId,
    }).strict().describe(stage.summary);
  }

  /**
   * A union of every loaded stage's entry schema (for the JSON Schema only:
   * validation goes entry by entry); call {@linkcode loadAll} first.
   */
  stageUnion(): z.ZodType {
    const entries = this.refs().filter((ref) => this.get(ref)).map((ref) =>
      this.entrySchema(this.get(ref)!)
    );
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
