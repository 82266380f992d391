/**
 * Secrets: marked once in a stage's schema, found in a parsed config by
 * walking schema and value together, and redacted from every output.
 * @module
 */
import { z } from "zod";

/**
 * Names whose values are kept secret whatever a config declares: environment
 * variables (`ITALY_API_KEY`, `DATABASE_URL`) and lookup columns (`api_key`).
 */
const SECRET_NAME = /(KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|AUTH|CREDENTIAL|DATABASE_URL)/i;

/** Whether a variable or column `name` is named like a secret (key, token, password, ...). */
export function namedLikeSecret(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** Marks a config field as secret: its value is redacted in logs, reports, errors and plans. */
export function secret<S extends z.ZodType = z.ZodString>(schema?: S): S {
  return (schema ?? z.string()).meta({ secret: true }) as S;
}

function isSecret(schema: z.ZodType): boolean {
  return z.globalRegistry.get(schema)?.secret === true;
}

/** Strips optional/default/nullable/pipe wrappers, noting a secret mark on any layer. */
function unwrap(schema: z.ZodType): { inner: z.ZodType; secret: boolean } {
  let current = schema;
  let marked = isSecret(current);
  for (let depth = 0; depth < 10; depth++) {
    const def = current._zod.def as {
      innerType?: z.ZodType;
      in?: z.ZodType;
      getter?: () => z.ZodType;
    };
    const next = def.innerType ?? def.in;
    if (!next) break;
    current = next;
    marked ||= isSecret(current);
  }
  return { inner: current, secret: marked };
}

/**
 * Collects the string values of secret fields in `value`, which was parsed by
 * `schema`. Walks objects, records, arrays and unions.
 */
export function collectSecrets(
  schema: z.ZodType,
  value: unknown,
  out: Set<string> = new Set(),
): Set<string> {
  const { inner, secret } = unwrap(schema);
  if (secret) {
    addSecretValues(value, out);
    return out;
  }
  if (value === null || value === undefined) return out;
  if (inner instanceof z.ZodObject && typeof value === "object") {
    const shape = inner.shape as Record<string, z.ZodType>;
    for (const [key, child] of Object.entries(shape)) {
      collectSecrets(child, (value as Record<string, unknown>)[key], out);
    }
  } else if (inner instanceof z.ZodRecord && typeof value === "object") {
    const valueType = inner._zod.def.valueType as z.ZodType;
    for (const child of Object.values(value as Record<string, unknown>)) {
      collectSecrets(valueType, child, out);
    }
  } else if (inner instanceof z.ZodArray && Array.isArray(value)) {
    for (const child of value) collectSecrets(inner.element as z.ZodType, child, out);
  } else if (inner instanceof z.ZodUnion) {
    for (const option of inner.options as z.ZodType[]) {
      if (option.safeParse(value).success) collectSecrets(option, value, out);
    }
  }
  return out;
}

function addSecretValues(value: unknown, out: Set<string>): void {
  if (typeof value === "string") {
    if (value.length >= 4) out.add(value);
  } else if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) addSecretValues(child, out);
  }
}

/** Replaces known secrets and URL passwords in text with `***`. */
export class Redactor {
  #secrets: string[] = [];

  /** Adds values to redact (strings shorter than 4 characters are ignored: too many false hits). */
  add(values: Iterable<string>): void {
    for (const value of values) {
      if (value.length < 4) continue;
      // Also as it appears inside JSON text (a JSON log line, a response body quoted in an error).
      for (const form of [value, JSON.stringify(value).slice(1, -1)]) {
        if (!this.#secrets.includes(form)) this.#secrets.push(form);
      }
    }
    // Longest first, so a secret containing another is replaced whole.
    this.#secrets.sort((a, b) => b.length - a.length);
  }

  /** `text` with every secret, and the password of any `scheme://user:password@host` URL, replaced. */
  redact(text: string): string {
    let out = text;
    for (const value of this.#secrets) {
      if (out.includes(value)) out = out.split(value).join("***");
    }
    // Up to the last `@` of the authority: a password may hold a raw `@`.
    return out.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]+:)[^\s/]*@/gi, "$1***@");
  }
}
