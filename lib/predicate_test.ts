import assert from "node:assert/strict";
import { compilePredicate, isEmptyValue, type Predicate, predicateSchema } from "./predicate.ts";

/** Parses through the real schema, then compiles. */
function compile(raw: unknown) {
  return compilePredicate(predicateSchema.parse(raw));
}

function messages(raw: unknown): string[] {
  const result = predicateSchema.safeParse(raw);
  assert.equal(result.success, false, `expected ${JSON.stringify(raw)} to be rejected`);
  return result.error!.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

Deno.test("compilePredicate() eq, ne, in and notIn compare text of strings, numbers and booleans", () => {
  const valid = compile({ field: "status", in: ["VALID", "DETAILSREQUIRED"] });
  assert.equal(valid({ status: "VALID" }), true);
  assert.equal(valid({ status: "DETAILSREQUIRED" }), true);
  assert.equal(valid({ status: "RESERVED" }), false);
  assert.equal(valid({ status: "valid" }), false);
  assert.equal(valid({}), false);

  const alarm = compile({ field: "is_alarm", eq: true });
  assert.equal(alarm({ is_alarm: "true" }), true);
  assert.equal(alarm({ is_alarm: true }), true);
  assert.equal(alarm({ is_alarm: "false" }), false);

  assert.equal(compile({ field: "n", eq: 42 })({ n: "42" }), true);
  assert.equal(compile({ field: "n", ne: 42 })({ n: 41 }), true);
  assert.equal(compile({ field: "n", ne: 42 })({}), true);
  assert.equal(compile({ field: "n", eq: null })({}), true);
  assert.equal(compile({ field: "n", eq: null })({ n: 0 }), false);
  assert.equal(compile({ field: "status", notIn: ["INVALID"] })({}), true);
  assert.equal(compile({ field: "status", notIn: ["INVALID"] })({ status: "INVALID" }), false);
  assert.equal(
    compile({ field: "status", in: ["valid"], caseInsensitive: true })({ status: "VALID" }),
    true,
  );
});

Deno.test("compilePredicate() contains, startsWith, endsWith with and without case", () => {
  const charity = compile({ field: "ticketName", contains: "CHARITY", caseInsensitive: true });
  assert.equal(charity({ ticketName: "HYROX MEN | CHARITY HIA" }), true);
  assert.equal(charity({ ticketName: "Charity | Hyrox Doubles Women" }), true);
  assert.equal(charity({ ticketName: "HYROX WOMEN" }), false);
  assert.equal(charity({ ticketName: null }), false);
  assert.equal(
    compile({ field: "ticketName", contains: "CHARITY" })({ ticketName: "charity" }),
    false,
  );

  const tags = compile({ field: "tags", contains: "critical" });
  assert.equal(tags({ tags: ["web", "critical"] }), true);
  assert.equal(tags({ tags: ["web"] }), false);

  const sentinel = compile({ field: "ticket_id", startsWith: "EXPORT STOPPED" });
  assert.equal(sentinel({ ticket_id: "EXPORT STOPPED DUE TO EXCESSIVE SIZE..." }), true);
  assert.equal(sentinel({ ticket_id: "INC0001" }), false);
  assert.equal(
    compile({ field: "file", endsWith: ".CSV", caseInsensitive: true })({ file: "a.csv" }),
    true,
  );
  assert.equal(compile({ field: "code", startsWith: "4" })({ code: 404 }), true);
});

Deno.test("compilePredicate() regex with flags and caseInsensitive", () => {
  const inc = compile({ field: "ticket_id", regex: "^INC\\d{4}$" });
  assert.equal(inc({ ticket_id: "INC1234" }), true);
  assert.equal(inc({ ticket_id: "inc1234" }), false);
  assert.equal(inc({ ticket_id: "INC12345" }), false);
  assert.equal(
    compile({ field: "ticket_id", regex: "^inc", caseInsensitive: true })({ ticket_id: "INC1" }),
    true,
  );
  assert.equal(compile({ field: "text", regex: "^b", flags: "m" })({ text: "a\nb" }), true);
  // Compiled once and not stateful: the same answer every time.
  const repeat = compile({ field: "x", regex: "a" });
  assert.deepEqual([repeat({ x: "a" }), repeat({ x: "a" }), repeat({ x: "a" })], [
    true,
    true,
    true,
  ]);
});

Deno.test("compilePredicate() follows nested paths", () => {
  const region = compile({ field: "customer.address.region", eq: "nairobi" });
  assert.equal(region({ customer: { address: { region: "nairobi" } } }), true);
  assert.equal(region({ customer: { address: null } }), false);
  assert.equal(region({}), false);
  assert.equal(
    compile({ field: "responses.0.code", eq: "CLR" })({ responses: [{ code: "CLR" }] }),
    true,
  );
});

Deno.test("compilePredicate() exists and empty", () => {
  const exists = compile({ field: "a.b", exists: true });
  assert.equal(exists({ a: { b: null } }), true);
  assert.equal(exists({ a: {} }), false);
  assert.equal(compile({ field: "a", exists: false })({}), true);

  const empty = compile({ field: "v", empty: true });
  for (const data of [{}, { v: null }, { v: "" }, { v: [] }]) {
    assert.equal(empty(data), true, JSON.stringify(data));
  }
  for (const data of [{ v: 0 }, { v: " " }, { v: [1] }, { v: false }]) {
    assert.equal(empty(data), false, JSON.stringify(data));
  }
  assert.equal(compile({ field: "v", empty: false })({ v: "x" }), true);
  assert.equal(isEmptyValue({}), false);
});

Deno.test("compilePredicate() compares numbers and ISO dates", () => {
  const high = compile({ field: "priority", gte: 3 });
  assert.equal(high({ priority: 3 }), true);
  assert.equal(high({ priority: "4" }), true);
  assert.equal(high({ priority: 2.5 }), false);
  assert.equal(high({ priority: "high" }), false);
  assert.equal(high({ priority: "" }), false);
  assert.equal(compile({ field: "n", gt: 3 })({ n: 3 }), false);
  assert.equal(compile({ field: "n", lt: 0 })({ n: -1 }), true);
  assert.equal(compile({ field: "n", lte: 0 })({ n: 0 }), true);

  const recent = compile({ field: "resolved_at", gte: "2025-09-01T00:00:00Z" });
  assert.equal(recent({ resolved_at: "2025-09-03T14:15:00-05:00" }), true);
  assert.equal(recent({ resolved_at: "2025-08-31T23:00:00-05:00" }), true); // 04:00Z on Sep 1
  assert.equal(recent({ resolved_at: "2025-08-31T23:00:00Z" }), false);
  assert.equal(recent({ resolved_at: new Date("2025-09-02T00:00:00Z") }), true);
  assert.equal(recent({ resolved_at: "not a date" }), false);
  assert.equal(compile({ field: "d", lt: "2025-09-01" })({ d: "2025-08-31" }), true);
});

Deno.test("compilePredicate() combines with all, any and not", () => {
  const send = compile({
    all: [
      { field: "status", in: ["VALID", "DETAILSREQUIRED"] },
      {
        any: [{ field: "ticketName", contains: "charity", caseInsensitive: true }, {
          field: "vip",
          eq: true,
        }],
      },
      { not: { field: "email", empty: true } },
    ],
  });
  assert.equal(send({ status: "VALID", ticketName: "CHARITY", email: "a@b.c" }), true);
  assert.equal(send({ status: "VALID", ticketName: "PRO", vip: "true", email: "a@b.c" }), true);
  assert.equal(send({ status: "VALID", ticketName: "PRO", email: "a@b.c" }), false);
  assert.equal(send({ status: "VALID", ticketName: "CHARITY", email: "" }), false);
  assert.equal(send({ status: "RESERVED", ticketName: "CHARITY", email: "a@b.c" }), false);
});

Deno.test("predicateSchema rejects leaves without exactly one operator", () => {
  assert.deepEqual(messages({ field: "status" }), [
    ': expected exactly one operator of eq, ne, in, notIn, contains, startsWith, endsWith, regex, exists, gt, gte, lt, lte, empty (or "all", "any", "not"), got none',
  ]);
  assert.match(messages({ field: "status", eq: "A", in: ["B"] })[0], /got "eq" and "in"$/);
  assert.deepEqual(messages({ eq: "A" }), [': expected "field" with "eq"']);
  assert.deepEqual(messages({ all: [{ field: "a", eq: 1 }], field: "x" }), [
    ': expected "all" alone, got it with "field"',
  ]);
  assert.deepEqual(messages({ any: [{ field: "a", eq: 1 }, { not: { field: "b" } }] }), [
    'any.1.not: expected exactly one operator of eq, ne, in, notIn, contains, startsWith, endsWith, regex, exists, gt, gte, lt, lte, empty (or "all", "any", "not"), got none',
  ]);
  assert.match(messages({ field: "a", eq: "x", bogus: 1 })[0], /bogus/);
});

Deno.test("predicateSchema rejects bad regexes, flags and bounds", () => {
  assert.match(messages({ field: "a", regex: "(" })[0], /^regex: invalid regular expression "\("/);
  assert.match(
    messages({ field: "a", regex: "a", flags: "g" })[0],
    /^flags: expected flags of "dimsuv"/,
  );
  assert.deepEqual(messages({ field: "a", eq: "x", flags: "i" }), [
    'flags: "flags" goes with "regex"',
  ]);
  assert.deepEqual(messages({ field: "a", gt: "soon" }), [
    'gt: expected a number or an ISO 8601 date, got "soon"',
  ]);
  assert.deepEqual(messages({ field: "a", eq: { x: 1 } }), [
    "eq: expected a string, a number, true, false or null",
  ]);
});

Deno.test("compilePredicate() refuses an unchecked malformed predicate", () => {
  assert.throws(() => compilePredicate({ field: "a" } as Predicate), {
    message: /expected "field" and exactly one operator/,
  });
});

Deno.test("compilePredicate() sees only a record's own fields, not Object.prototype's", () => {
  const check = (spec: unknown) => compilePredicate(predicateSchema.parse(spec));
  assert.equal(check({ field: "toString", exists: true })({}), false);
  assert.equal(check({ field: "constructor", eq: null })({}), true);
  assert.equal(check({ field: "constructor", empty: true })({}), true);
  assert.equal(check({ field: "constructor", eq: "x" })({ constructor: "x" }), true);
});
