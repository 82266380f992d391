/**
 * Dotted paths into plain objects: `customer.address.city`, `responses.0.code`.
 * @module
 */

/** Splits `a.b.0.c` into its segments. */
export function splitPath(path: string): string[] {
  return path === "" ? [] : path.split(".");
}

/**
 * `object[key]` when `object` has it itself: a record's `constructor` or
 * `toString` is not Object.prototype's. (Data holds no functions, so only a
 * function, or `__proto__`, needs the own-property check.)
 */
function own(object: Record<string, unknown>, key: string): unknown {
  const value = object[key];
  if (typeof value !== "function" && key !== "__proto__") return value;
  return Object.hasOwn(object, key) ? value : undefined;
}

/** The value at `path`, or `undefined` when any step is missing. */
export function getPath(object: unknown, path: string): unknown {
  // Most paths are one plain key: no split, no array.
  if (path !== "" && !path.includes(".")) {
    return object !== null && typeof object === "object"
      ? own(object as Record<string, unknown>, path)
      : undefined;
  }
  let current: unknown = object;
  for (const segment of splitPath(path)) {
    if (current === null || typeof current !== "object") return undefined;
    current = own(current as Record<string, unknown>, segment);
  }
  return current;
}

/** Whether `path` exists (even holding `null` or `undefined`). */
export function hasPath(object: unknown, path: string): boolean {
  const segments = splitPath(path);
  let current: unknown = object;
  for (const segment of segments) {
    if (current === null || typeof current !== "object" || !Object.hasOwn(current, segment)) {
      return false;
    }
    current = (current as Record<string, unknown>)[segment];
  }
  return true;
}

/** Sets `path` to `value`, creating objects on the way. Mutates `object`. */
export function setPath(object: Record<string, unknown>, path: string, value: unknown): void {
  const segments = splitPath(path);
  if (segments.length === 0) throw new Error(`Cannot set path: path is empty`);
  let current: Record<string, unknown> = object;
  for (const segment of segments.slice(0, -1)) {
    const next = current[segment];
    if (next === null || typeof next !== "object") {
      const created: Record<string, unknown> = {};
      current[segment] = created;
      current = created;
    } else {
      current = next as Record<string, unknown>;
    }
  }
  current[segments[segments.length - 1]] = value;
}

/** Deletes `path`; returns whether something was there. Mutates `object`. */
export function deletePath(object: Record<string, unknown>, path: string): boolean {
  const segments = splitPath(path);
  const parent = getPath(object, segments.slice(0, -1).join("."));
  if (parent === null || typeof parent !== "object") return false;
  const last = segments[segments.length - 1];
  if (!(last in parent)) return false;
  delete (parent as Record<string, unknown>)[last];
  return true;
}

/**
 * Fills `{field}` and `{a.b}` placeholders from `data`. Missing values render
 * as empty strings; `encode` is applied to each value (e.g. encodeURIComponent
 * for URL templates).
 */
export function renderTemplate(
  template: string,
  data: unknown,
  encode: (value: string) => string = (value) => value,
): string {
  return template.replace(/\{([^{}]+)\}/g, (_, path: string) => {
    const value = getPath(data, path.trim());
    return value === undefined || value === null ? "" : encode(String(value));
  });
}

/** The `{field}` placeholders a template uses. */
export function templateFields(template: string): string[] {
  return [...template.matchAll(/\{([^{}]+)\}/g)].map((match) => match[1].trim());
}

/**
 * Renders a JSON template: `render` turns each string into a value, arrays
 * and objects are rendered element by element; a string rendered as
 * `undefined` leaves its key out of an object and becomes `null` in an array.
 */
export function renderJsonTemplate(
  template: unknown,
  render: (text: string) => unknown,
): unknown {
  if (typeof template === "string") return render(template);
  if (Array.isArray(template)) {
    return template.map((element) => renderJsonTemplate(element, render) ?? null);
  }
  if (template !== null && typeof template === "object") {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(template)) {
      const rendered = renderJsonTemplate(value, render);
      if (rendered !== undefined) out[name] = rendered;
    }
    return out;
  }
  return template;
}
