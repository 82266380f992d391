import assert from "node:assert/strict";
import type { Item } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  fromArray,
  item,
  testContext,
} from "../../tests/harness.ts";
import { stage } from "./map.ts";

/** Runs items through a transform.map built from `config`. */
async function run(config: Record<string, unknown>, items: Item[]) {
  const context = testContext();
  const runtime = await createStage(stage, config, context.ctx);
  const out = await collect(runtime.process(fromArray(items)));
  return { out, deadLetters: context.deadLetters };
}

const CHICAGO = {
  type: "date",
  format: "MM/dd/yyyy hh:mm a",
  zone: "America/Chicago",
  output: "iso-offset",
};

const TEXAS811 = {
  fields: {
    ticket_number: { from: "ticket_number", required: true, trim: true },
    ticket_type: { from: "type", case: "lower" },
    created_at: { from: "created", ...CHICAGO },
    work_start: { from: "work_start", ...CHICAGO },
    "excavator.company": "excavator.company_name",
    "excavator.phone": { from: ["excavator.phone", "excavator.mobile"] },
    emergency: { from: "is_emergency", type: "boolean", default: false },
    responses: {
      from: "responses",
      default: [],
      each: {
        member_code: { from: "code", required: true },
        member_name: "name",
        status: { from: "response", case: "upper" },
        responded_at: { from: "date", ...CHICAGO },
        comment: { from: "comment", trim: true, emptyAsNull: true },
      },
    },
  },
};

const SCRAPED = {
  ticket_number: " 2509030001 ",
  type: "NORMAL",
  created: "09/03/2025 02:15 PM",
  work_start: "01/05/2026 07:00 AM",
  excavator: { company_name: "Acme Excavation", phone: "", mobile: "512-555-0100" },
  is_emergency: "No",
  ignored: "not mapped",
  responses: [
    { code: "ATT01", name: "AT&T", response: "Clear", date: "09/04/2025 10:30 AM", comment: "  " },
    {
      code: "ONC02",
      name: "Oncor",
      response: "marked",
      date: "09/05/2025 12:05 AM",
      comment: "Paint",
    },
  ],
};

Deno.test("transform.map maps a Texas811 ticket with nested responses and Chicago dates", async () => {
  const { out, deadLetters } = await run(TEXAS811, [item("t1", SCRAPED)]);
  assert.deepEqual(deadLetters, []);
  assert.deepEqual(out[0].data, {
    ticket_number: "2509030001",
    ticket_type: "normal",
    created_at: "2025-09-03T14:15:00-05:00",
    work_start: "2026-01-05T07:00:00-06:00",
    excavator: { company: "Acme Excavation", phone: "512-555-0100" },
    emergency: false,
    responses: [
      {
        member_code: "ATT01",
        member_name: "AT&T",
        status: "CLEAR",
        responded_at: "2025-09-04T10:30:00-05:00",
        comment: null,
      },
      {
        member_code: "ONC02",
        member_name: "Oncor",
        status: "MARKED",
        responded_at: "2025-09-05T00:05:00-05:00",
        comment: "Paint",
      },
    ],
  });
  assert.equal(out[0].key, "t1");
  // The input record is untouched.
  assert.equal(SCRAPED.ticket_number, " 2509030001 ");
});

Deno.test("transform.map uses defaults for a ticket without responses and omits missing fields", async () => {
  const { out } = await run(TEXAS811, [
    item("t2", { ticket_number: "2509030002", created: "09/03/2025 12:00 PM" }),
  ]);
  assert.deepEqual(out[0].data, {
    ticket_number: "2509030002",
    created_at: "2025-09-03T12:00:00-05:00",
    emergency: false,
    responses: [],
  });
});

Deno.test("transform.map dead-letters a bad date with the field's name, keeping the origin", async () => {
  const bad = item("t3", { ...SCRAPED, created: "13/45/2025 99:99 XM" }, "line 7");
  const good = item("t4", SCRAPED, "line 8");
  const { out, deadLetters } = await run(TEXAS811, [bad, good]);
  assert.deepEqual(out.map((value) => value.key), ["t4"]);
  assert.equal(deadLetters.length, 1);
  assert.equal(
    deadLetters[0].reason,
    'created_at: expected a date like "MM/dd/yyyy hh:mm a", got "13/45/2025 99:99 XM"',
  );
  assert.equal(deadLetters[0].item, bad);
  assert.deepEqual(deadLetters[0].item.origin, { source: "test.json", position: "line 7" });
});

Deno.test("transform.map reports every problem of a record, nested ones by element", async () => {
  const record = {
    ...SCRAPED,
    ticket_number: "  ",
    is_emergency: "maybe",
    responses: [SCRAPED.responses[0], { name: "Oncor", date: "09/31/2025 10:00 AM" }],
  };
  const { out, deadLetters } = await run(TEXAS811, [item("t5", record)]);
  assert.deepEqual(out, []);
  assert.equal(
    deadLetters[0].reason,
    [
      'missing required field "ticket_number"',
      'emergency: expected true or false (or yes/no, 1/0), got "maybe"',
      'missing required field "responses[1].member_code"',
      'responses[1].responded_at: expected a date like "MM/dd/yyyy hh:mm a", got "09/31/2025 10:00 AM": day 31 is out of range 1-30 for 2025-09',
    ].join("; "),
  );
});

Deno.test("transform.map onError null sets the failing field to null and goes on", async () => {
  const { out, deadLetters } = await run(
    { ...TEXAS811, onError: "null" },
    [item("t6", { ...SCRAPED, created: "yesterday" })],
  );
  assert.deepEqual(deadLetters, []);
  assert.equal(out[0].data.created_at, null);
  assert.equal(out[0].data.ticket_number, "2509030001");
});

const INC_ROW = {
  ticket_id: "INC0001234",
  region: "NAIROBI EAST",
  raw_status: "Closed",
  created_at_service: "2026-06-13 09:15:00",
  closed_at: "",
  latitude: "",
  mttr: "26.5",
  is_alarm: "false",
  week_start: "2026-06-08",
  week_end: "2026-06-14",
  source_s3_bucket: "exports",
  source_s3_key: "automations/inc/2026-06-15T17-00-00.csv",
  department: "FIELD",
  nested: { keep: "me" },
};

const INC = {
  keep: true,
  emptyAsNull: true,
  fields: {
    region: { case: "lower" },
    raw_status: { case: "upper" },
    created_at_service: { type: "date", format: "yyyy-MM-dd HH:mm:ss", zone: "Africa/Nairobi" },
    closed_at: { type: "date", format: "yyyy-MM-dd HH:mm:ss", zone: "Africa/Nairobi" },
    mttr: { type: "number" },
    is_alarm: { type: "boolean" },
    "nested.added": { value: 1 },
  },
  drop: [
    "week_start",
    "week_end",
    "source_s3_bucket",
    "source_s3_key",
    "department",
    "nested.keep",
  ],
};

Deno.test("transform.map cleans INC rows: keep, drop, case, Nairobi dates, empty strings to null", async () => {
  const input = structuredClone(INC_ROW);
  const { out, deadLetters } = await run(INC, [item("inc", input)]);
  assert.deepEqual(deadLetters, []);
  assert.deepEqual(out[0].data, {
    ticket_id: "INC0001234",
    region: "nairobi east",
    raw_status: "CLOSED",
    created_at_service: "2026-06-13T06:15:00Z",
    closed_at: null,
    latitude: null,
    mttr: 26.5,
    is_alarm: false,
    nested: { added: 1 },
  });
  // Copy-on-write: the input (and its nested object) is not mutated.
  assert.deepEqual(input, INC_ROW);
});

Deno.test("transform.map maps ServiceDesk requests: template, pluck, epoch-ms, defaults", async () => {
  const config = {
    fields: {
      ticket_id: { from: "id", type: "string", required: true },
      description: { template: "{subject}\n\n{description}", required: true },
      resolution: { from: "resolution.content", default: "" },
      resolved_date: {
        from: "resolved_time.value",
        type: "date",
        format: "epoch-ms",
        required: true,
      },
      tags: { from: "tags", pluck: "name", default: [] },
      source: { value: "bulk_import" },
    },
  };
  const full = {
    id: 123456,
    subject: "Server not responding",
    description: "Web server down at 192.168.1.100",
    resolution: { content: "Restarted Apache service" },
    resolved_time: { value: "1704150000000", display_value: "Jan 1, 2024 11:00 PM" },
    tags: [{ name: "critical" }, { name: "web-server" }],
  };
  const bare = { id: "123457", subject: "Printer jam", resolved_time: { value: 1704150000000 } };
  const broken = { id: "123458", subject: "x", resolved_time: { value: "Jan 1" } };
  const { out, deadLetters } = await run(config, [
    item("a", full),
    item("b", bare),
    item("c", broken),
  ]);
  assert.deepEqual(out.map((value) => value.data), [
    {
      ticket_id: "123456",
      description: "Server not responding\n\nWeb server down at 192.168.1.100",
      resolution: "Restarted Apache service",
      resolved_date: "2024-01-01T23:00:00Z",
      tags: ["critical", "web-server"],
      source: "bulk_import",
    },
    {
      ticket_id: "123457",
      description: "Printer jam\n\n",
      resolution: "",
      resolved_date: "2024-01-01T23:00:00Z",
      tags: [],
      source: "bulk_import",
    },
  ]);
  assert.deepEqual(deadLetters.map((value) => value.reason), [
    'resolved_date: expected epoch milliseconds, got "Jan 1"',
  ]);
});

Deno.test("transform.map coalesces paths: the first value not missing, null or empty", async () => {
  const config = { fields: { contact: { from: ["contact.email", "contact.phone", "owner"] } } };
  const { out } = await run(config, [
    item("a", { contact: { email: "a@x.io", phone: "1" } }),
    item("b", { contact: { email: "", phone: "555" } }),
    item("c", { contact: { email: null }, owner: "ops" }),
    item("d", { contact: { email: "" } }),
    item("e", {}),
  ]);
  assert.deepEqual(out.map((value) => value.data), [
    { contact: "a@x.io" },
    { contact: "555" },
    { contact: "ops" },
    { contact: "" },
    {},
  ]);
});

Deno.test("transform.map converts numbers, integers, booleans, strings and JSON strictly", async () => {
  const config = {
    fields: {
      n: { type: "number" },
      i: { type: "integer" },
      b: { type: "boolean" },
      s: { type: "string" },
      j: { type: "json" },
    },
  };
  const { out, deadLetters } = await run(config, [
    item("ok", { n: " 1.5e2 ", i: "42", b: "YES", s: 7, j: '{"a":[1]}' }),
    item("ok2", { n: -3, i: 7, b: 0, s: true, j: { a: 1 } }),
    item("bad", { n: "", i: "4.2", b: "maybe", s: { x: 1 }, j: "{oops" }),
    item("bad2", { n: "12abc", i: "0x10", b: "1" }),
  ]);
  assert.deepEqual(out.map((value) => value.data), [
    { n: 150, i: 42, b: true, s: "7", j: { a: [1] } },
    { n: -3, i: 7, b: false, s: "true", j: { a: 1 } },
  ]);
  assert.equal(deadLetters.length, 2);
  assert.match(
    deadLetters[0].reason,
    /^n: expected a number, got ""; i: expected an integer, got "4\.2"; b: expected true or false \(or yes\/no, 1\/0\), got "maybe"; s: expected text, got an object; j: expected JSON text, got "\{oops": /,
  );
  assert.equal(
    deadLetters[1].reason,
    'n: expected a number, got "12abc"; i: expected a number, got "0x10"',
  );
});

Deno.test("transform.map dead-letters numbers too large to hold and integers beyond 2^53", async () => {
  const config = { fields: { id: "id", n: { type: "number" }, i: { type: "integer" } } };
  const { out, deadLetters } = await run(config, [
    item("big", { id: "big", n: "1e999", i: "9007199254740993" }),
    item("negative", { id: "negative", n: "-1e999", i: "-1e20" }),
    item("edge", { id: "edge", n: "1.7e308", i: "9007199254740991" }),
  ]);
  assert.deepEqual(out.map((value) => value.data), [
    { id: "edge", n: 1.7e308, i: 9007199254740991 },
  ]);
  assert.deepEqual(deadLetters.map((entry) => [entry.item.key, entry.reason]), [
    [
      "big",
      'n: expected a number, got "1e999", which is too large to represent; ' +
      'i: expected an integer between -9007199254740991 and 9007199254740991, got "9007199254740993", which cannot be held exactly',
    ],
    [
      "negative",
      'n: expected a number, got "-1e999", which is too large to represent; ' +
      'i: expected an integer between -9007199254740991 and 9007199254740991, got "-1e20", which cannot be held exactly',
    ],
  ]);
});

Deno.test("transform.map config: contradictory field specs are reported at validation, each with its path", () => {
  assert.deepEqual(
    configProblems(stage, {
      fields: {
        a: { from: "x", value: 1 },
        b: { format: "iso" },
        c: { type: "date", format: "MM/dd/yyyy" },
        d: { type: "date", output: "iso-offset" },
        e: { each: { f: { type: "number", case: "lower" } }, type: "json" },
        g: { pluck: "name", each: {} },
        h: { required: true, default: "" },
        i: { type: "string", zone: "UTC", output: "epoch-ms" },
      },
    }),
    [
      'stages[1].fields.a: expected one of "from", "value" or "template", got "from" and "value"',
      'stages[1].fields.b.format: expected "type": "date" with it, got no "type"',
      'stages[1].fields.c.zone: required: "format" "MM/dd/yyyy" is a local time: expected an IANA time zone like "America/Chicago"',
      'stages[1].fields.d.zone: required: "output": "iso-offset" writes a local time: expected an IANA time zone like "America/Chicago"',
      'stages[1].fields.e.each.f.case: expected text ("type": "string" or no "type"), got "type": "number"',
      'stages[1].fields.e.type: cannot be used with "each": expected it on the nested fields instead',
      'stages[1].fields.g.each: expected "pluck" or "each", not both',
      'stages[1].fields.h.default: expected "required" or "default", not both',
      'stages[1].fields.i.zone: expected "type": "date" with it, got "type": "string"',
      'stages[1].fields.i.output: expected "type": "date" with it, got "type": "string"',
    ],
  );
  assert.deepEqual(configProblems(stage, { fields: {} }), [
    'stages[1].fields: expected at least one field when "keep" is false',
  ]);
  assert.deepEqual(configProblems(stage, { fields: {}, keep: true }), []);
  assert.deepEqual(
    configProblems(stage, {
      fields: {
        at: { type: "date", format: "MM/dd/yyyy", zone: "America/Chicago", output: "iso-offset" },
        tags: { from: "labels", pluck: "name", case: "lower" },
      },
    }),
    [],
  );
});

Deno.test("transform.map schema rejects unknown keys, types and date formats", () => {
  const unknown = stage.config.safeParse({ fields: { a: { form: "x" } } });
  assert.equal(unknown.success, false);
  assert.deepEqual(unknown.error!.issues[0].path, ["fields", "a"]);
  assert.deepEqual((unknown.error!.issues[0] as { keys?: string[] }).keys, ["form"]);
  const format = stage.config.safeParse({
    fields: { a: { type: "date", format: "dd/MM/yy", zone: "UTC" } },
  });
  assert.equal(format.success, false);
  assert.match(
    format.error!.issues[0].message,
    /^invalid date format "dd\/MM\/yy": unsupported token "yy"/,
  );
  assert.equal(stage.config.safeParse({ fields: { a: 42 } }).success, false);
  assert.equal(stage.config.safeParse({ fields: { a: "b" }, extra: true }).success, false);
});

Deno.test("transform.map drops top-level keys even when a field writes them, and keeps order", async () => {
  const config = {
    keep: true,
    fields: { department: { value: "set" }, region: { case: "lower" } },
    drop: ["department", "week_start"],
  };
  const input = { ticket_id: "T1", week_start: "", region: "COAST", department: "X", mttr: "" };
  const { out } = await run(config, [item("t", input)]);
  assert.deepEqual(out[0].data, { ticket_id: "T1", region: "coast", mttr: "" });
  assert.deepEqual(Object.keys(out[0].data), ["ticket_id", "region", "mttr"]);
  assert.equal(input.department, "X", "the input is not mutated");
});

Deno.test("map() coalescing with trim passes over a source that trims to nothing", async () => {
  const t = testContext();
  const config = {
    fields: { owner: { from: ["owner", "assigned_team"], trim: true, required: true } },
  };
  const mapped = await createStage(stage, config, t.ctx);
  const out = await collect(
    mapped.process(fromArray([item("k", { owner: "   ", assigned_team: " Team A " })])),
  );
  assert.deepEqual(out.map((o) => o.data), [{ owner: "Team A" }]);
  assert.deepEqual(t.deadLetters, []);
});

Deno.test("map() keep with emptyAsNull copies a key holding NUL as it is", async () => {
  const t = testContext();
  const mapped = await createStage(stage, { keep: true, emptyAsNull: true, fields: {} }, t.ctx);
  const out = await collect(mapped.process(fromArray([
    item("1", { a: 1, b: 2 }),
    item("2", { x: 1 }),
    item("3", { "a\u0000b": "v" }),
  ])));
  assert.deepEqual(out[2].data, { "a\u0000b": "v" });
});
