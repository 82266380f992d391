/**
 * Fast construction of records that share one set of keys (the rows of a CSV
 * file, the output of a map over them).
 *
 * A record built key by key (`out[name] = value` in a loop) goes through a
 * generic keyed store and regrows its property storage as it goes; with 30
 * columns that is most of the cost of reading a row. A function compiled once
 * per key list builds the record from an object literal instead: one
 * allocation, one hidden class for every record, so later stages read it
 * through monomorphic inline caches.
 *
 * Keys are embedded as JSON string literals, so any text is safe; a
 * `__proto__` key (which a literal would treat as the prototype) makes these
 * fall back to the plain loop.
 * @module
 */

/** Builds `{ [keys[i]]: values[i] }` for a fixed key list; `""` to null when `emptyAsNull`. */
export type RecordBuilder = (values: readonly unknown[]) => Record<string, unknown>;

/** Copies the fixed `keys` of a record into a new one; `""` to null when `emptyAsNull`. */
export type RecordPicker = (data: Record<string, unknown>) => Record<string, unknown>;

function literal(keys: readonly string[], value: (index: number, key: string) => string): string {
  return `{${keys.map((key, index) => `${JSON.stringify(key)}: ${value(index, key)}`).join(", ")}}`;
}

function compilable(keys: readonly string[]): boolean {
  return !keys.includes("__proto__") && keys.length <= 1000;
}

const NULL_IF_EMPTY = '(x) => x === "" ? null : x';

/** A {@linkcode RecordBuilder} for `keys` (later duplicates win, as with assignment). */
export function recordBuilder(keys: readonly string[], emptyAsNull = false): RecordBuilder {
  if (!compilable(keys)) {
    return function buildRecord(values) {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < keys.length; i++) {
        const value = values[i];
        out[keys[i]] = emptyAsNull && value === "" ? null : value;
      }
      return out;
    };
  }
  const body = emptyAsNull
    ? `const n = ${NULL_IF_EMPTY}; return (v) => (${literal(keys, (i) => `n(v[${i}])`)});`
    : `return (v) => (${literal(keys, (i) => `v[${i}]`)});`;
  return new Function(body)() as RecordBuilder;
}

/** A {@linkcode RecordPicker} for `keys`. */
export function recordPicker(keys: readonly string[], emptyAsNull = false): RecordPicker {
  if (!compilable(keys)) {
    return function pickRecord(data) {
      const out: Record<string, unknown> = {};
      for (const key of keys) {
        const value = data[key];
        out[key] = emptyAsNull && value === "" ? null : value;
      }
      return out;
    };
  }
  const read = (key: string) => `d[${JSON.stringify(key)}]`;
  const body = emptyAsNull
    ? `const n = ${NULL_IF_EMPTY}; return (d) => (${literal(keys, (_, key) => `n(${read(key)})`)});`
    : `return (d) => (${literal(keys, (_, key) => read(key))});`;
  return new Function(body)() as RecordPicker;
}

/** Copies a record's fixed keys in the given order, or `undefined` when a value is a non-null object. */
export type FlatPicker = (data: Record<string, unknown>) => Record<string, unknown> | undefined;

/**
 * A {@linkcode FlatPicker} for `keys`, or `undefined` when they cannot be
 * compiled (`__proto__`, very many keys): the caller takes its general path.
 */
export function flatPicker(keys: readonly string[]): FlatPicker | undefined {
  if (!compilable(keys)) return undefined;
  const reads = keys.map((key, i) => `const v${i} = d[${JSON.stringify(key)}];`).join(" ");
  const nested = keys.map((_, i) => `(typeof v${i} === "object" && v${i} !== null)`).join(" || ");
  const body = `return (d) => { ${reads} if (${nested || "false"}) return undefined; return ${
    literal(keys, (i) => `v${i}`)
  }; };`;
  return new Function(body)() as FlatPicker;
}

/**
 * Values derived from a key list (a compiled picker, a sorted order), cached
 * by the list: the list of the last call is recognised without building a
 * lookup key, up to `size` lists are kept, and once `budget` values have been
 * derived a list not seen before gets `undefined`, so an input whose keys
 * keep changing takes the caller's general path instead of compiling for
 * every record.
 */
export class ShapeCache<T> {
  readonly #derive: (keys: string[]) => T;
  readonly #budget: number;
  readonly #size: number;
  readonly #byList = new Map<string, T>();
  #derived = 0;
  #lastKeys: string[] | undefined;
  #last: T | undefined;

  constructor(derive: (keys: string[]) => T, options: { budget?: number; size?: number } = {}) {
    this.#derive = derive;
    this.#budget = options.budget ?? Infinity;
    this.#size = options.size ?? 64;
  }

  /** The value for `keys` (derived now if new and within budget), or `undefined`. */
  get(keys: string[]): T | undefined {
    if (this.#lastKeys !== undefined && sameKeys(keys, this.#lastKeys)) return this.#last;
    // JSON: no two key lists share an id (a join could: ["a","b"] and ["a\u0000b"]).
    const id = JSON.stringify(keys);
    let value: T | undefined;
    if (this.#byList.has(id)) value = this.#byList.get(id);
    else {
      if (this.#derived >= this.#budget) return undefined;
      this.#derived++;
      value = this.#derive(keys);
      if (this.#byList.size >= this.#size) this.#byList.clear();
      this.#byList.set(id, value);
    }
    this.#lastKeys = keys;
    this.#last = value;
    return value;
  }
}

/**
 * Copies a record's own keys except `exclude` (`""` to null when
 * `emptyAsNull`), through a picker compiled for the record's key list. Key
 * lists beyond the first 16 get the plain loop.
 */
export function recordCopier(
  exclude: ReadonlySet<string>,
  emptyAsNull = false,
): (data: Record<string, unknown>) => Record<string, unknown> {
  const pickers = new ShapeCache(
    (keys) => recordPicker(keys.filter((key) => !exclude.has(key)), emptyAsNull),
    { budget: 16 },
  );
  function loop(data: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(data)) {
      if (exclude.has(key)) continue;
      const value = data[key];
      out[key] = emptyAsNull && value === "" ? null : value;
    }
    return out;
  }
  return function copyRecord(data) {
    const picker = pickers.get(Object.keys(data));
    return picker ? picker(data) : loop(data);
  };
}

/** Whether two key lists are the same keys in the same order. */
function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
