import assert from "node:assert/strict";
import { z } from "zod";
import { collectSecrets, Redactor, secret } from "./secret.ts";

Deno.test("collectSecrets() finds marked fields in objects, records, arrays and wrappers", () => {
  const schema = z.object({
    url: secret().optional(),
    name: z.string(),
    headers: z.record(z.string(), secret()).default({}),
    nested: z.object({ token: secret().default("none-token") }),
    list: z.array(z.object({ key: secret() })),
  });
  const value = schema.parse({
    url: "postgres://u:pw@h/db",
    name: "visible",
    headers: { authtoken: "tok-123" },
    nested: {},
    list: [{ key: "k-aaaa" }, { key: "k-bbbb" }],
  });
  const found = collectSecrets(schema, value);
  assert.deepEqual(
    [...found].sort(),
    ["k-aaaa", "k-bbbb", "none-token", "postgres://u:pw@h/db", "tok-123"],
  );
  assert.ok(!found.has("visible"));
});

Deno.test("secret() is visible in JSON Schema", () => {
  const json = z.toJSONSchema(z.object({ key: secret() })) as unknown as {
    properties: { key: { secret?: boolean } };
  };
  assert.equal(json.properties.key.secret, true);
});

Deno.test("Redactor.redact() hides secrets and URL passwords", () => {
  const redactor = new Redactor();
  redactor.add(["abcd1234", "abcd1234-longer", "ab"]);
  assert.equal(redactor.redact("key=abcd1234-longer; k2=abcd1234"), "key=***; k2=***");
  assert.equal(redactor.redact("ab stays"), "ab stays");
  assert.equal(
    redactor.redact('Cannot connect to "postgres://app:s3cr%21t@db:5432/x"'),
    'Cannot connect to "postgres://app:***@db:5432/x"',
  );
  assert.equal(
    redactor.redact("postgres://postgres:hun@ter2pw@127.0.0.1:5/test"),
    "postgres://postgres:***@127.0.0.1:5/test",
  );
});

Deno.test("Redactor.redact() hides a secret as JSON text writes it (a JSON log line)", () => {
  const redactor = new Redactor();
  const secret = 'sec"ret\\value';
  redactor.add([secret]);
  const line = JSON.stringify({ message: `invalid api key ${secret}` });
  assert.ok(line.includes('sec\\"ret\\\\value'), "the line holds the escaped form");
  assert.equal(redactor.redact(line), JSON.stringify({ message: "invalid api key ***" }));
});
