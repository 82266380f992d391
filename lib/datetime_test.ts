import assert from "node:assert/strict";
import {
  dateFormatSchema,
  dateParser,
  epochMsParser,
  formatEpochMs,
  formatInstant,
  isLocalFormat,
  parseDateTime,
  zoneSchema,
} from "./datetime.ts";

const TEXAS = { format: "MM/dd/yyyy hh:mm a", zone: "America/Chicago" };

Deno.test("parseDateTime() reads Chicago summer times as CDT (-05:00)", () => {
  const instant = parseDateTime("09/03/2025 02:15 PM", TEXAS);
  assert.equal(instant.toString(), "2025-09-03T19:15:00Z");
  assert.equal(
    formatInstant(instant, { zone: "America/Chicago", style: "iso-offset" }),
    "2025-09-03T14:15:00-05:00",
  );
});

Deno.test("parseDateTime() reads Chicago winter times as CST (-06:00)", () => {
  const instant = parseDateTime("01/15/2025 09:05 am", TEXAS);
  assert.equal(instant.toString(), "2025-01-15T15:05:00Z");
  assert.equal(
    formatInstant(instant, { zone: "America/Chicago", style: "iso-offset" }),
    "2025-01-15T09:05:00-06:00",
  );
});

Deno.test("parseDateTime() treats 12 AM as midnight and 12 PM as noon", () => {
  assert.equal(parseDateTime("09/03/2025 12:00 AM", TEXAS).toString(), "2025-09-03T05:00:00Z");
  assert.equal(parseDateTime("09/03/2025 12:30 PM", TEXAS).toString(), "2025-09-03T17:30:00Z");
  assert.equal(parseDateTime("09/03/2025 11:59 PM", TEXAS).toString(), "2025-09-04T04:59:00Z");
});

Deno.test("parseDateTime() moves a time in the spring-forward gap forward (compatible)", () => {
  // 2025-03-09 02:00 CST -> 03:00 CDT in Chicago: 02:30 does not exist.
  const instant = parseDateTime("03/09/2025 02:30 AM", TEXAS);
  assert.equal(
    formatInstant(instant, { zone: "America/Chicago", style: "iso-offset" }),
    "2025-03-09T03:30:00-05:00",
  );
});

Deno.test("parseDateTime() takes the earlier of two fall-back times (compatible)", () => {
  // 2025-11-02 02:00 CDT -> 01:00 CST: 01:30 happens twice; the first is CDT.
  const instant = parseDateTime("11/02/2025 01:30 AM", TEXAS);
  assert.equal(instant.toString(), "2025-11-02T06:30:00Z");
  assert.equal(
    formatInstant(instant, { zone: "America/Chicago", style: "iso-offset" }),
    "2025-11-02T01:30:00-05:00",
  );
});

Deno.test("parseDateTime() reads Nairobi 24-hour times (EAT, +03:00)", () => {
  const options = { format: "yyyy-MM-dd HH:mm:ss", zone: "Africa/Nairobi" };
  assert.equal(parseDateTime("2026-06-15 17:00:00", options).toString(), "2026-06-15T14:00:00Z");
  assert.equal(parseDateTime("2026-06-15 00:30:05", options).toString(), "2026-06-14T21:30:05Z");
  assert.equal(
    formatInstant(parseDateTime("2026-06-15 17:00:00", options), {
      zone: "Africa/Nairobi",
      style: "iso-offset",
    }),
    "2026-06-15T17:00:00+03:00",
  );
});

Deno.test("parseDateTime() reads single-digit fields, milliseconds and quoted literals", () => {
  assert.equal(
    parseDateTime("9/3/2025 7:05", { format: "M/d/yyyy H:mm", zone: "UTC" }).toString(),
    "2025-09-03T07:05:00Z",
  );
  assert.equal(
    parseDateTime("2025-09-03T07:05:09.250", {
      format: "yyyy-MM-dd'T'HH:mm:ss.SSS",
      zone: "UTC",
    }).toString(),
    "2025-09-03T07:05:09.25Z",
  );
  assert.equal(
    parseDateTime(20250903, { format: "yyyyMMdd", zone: "UTC" }).toString(),
    "2025-09-03T00:00:00Z",
  );
});

Deno.test("parseDateTime() reads epoch milliseconds and seconds, as numbers or strings", () => {
  const ms = parseDateTime(1704150000000, { format: "epoch-ms" });
  assert.equal(ms.toString(), "2024-01-01T23:00:00Z");
  assert.equal(parseDateTime("1704150000000", { format: "epoch-ms" }).equals(ms), true);
  assert.equal(parseDateTime(1704150000, { format: "epoch-s" }).equals(ms), true);
  assert.equal(
    parseDateTime("1704150000.5", { format: "epoch-s" }).epochMilliseconds,
    1704150000500,
  );
  assert.equal(formatInstant(ms, { style: "epoch-ms" }), 1704150000000);
});

Deno.test("parseDateTime() reads ISO with an offset, and without one in the zone", () => {
  assert.equal(
    parseDateTime("2025-09-03T14:15:00-05:00", { format: "iso" }).toString(),
    "2025-09-03T19:15:00Z",
  );
  assert.equal(
    parseDateTime("2025-09-03T19:15:00Z", { format: "iso" }).toString(),
    "2025-09-03T19:15:00Z",
  );
  assert.equal(
    parseDateTime("2025-09-03T14:15:00", { format: "iso", zone: "America/Chicago" }).toString(),
    "2025-09-03T19:15:00Z",
  );
  assert.equal(
    parseDateTime("2025-09-03", { format: "iso", zone: "Africa/Nairobi" }).toString(),
    "2025-09-02T21:00:00Z",
  );
  assert.throws(
    () => parseDateTime("2025-09-03T14:15:00", { format: "iso" }),
    { message: /without an offset and no zone/ },
  );
});

Deno.test("parseDateTime() rejects text that does not match the pattern", () => {
  assert.throws(() => parseDateTime("13/45/2025 99:99 XM", TEXAS), {
    name: "Error",
    message: 'expected a date like "MM/dd/yyyy hh:mm a", got "13/45/2025 99:99 XM"',
  });
  assert.throws(() => parseDateTime("9/3/2025 2:15 PM", TEXAS), {
    message: 'expected a date like "MM/dd/yyyy hh:mm a", got "9/3/2025 2:15 PM"',
  });
  assert.throws(() => parseDateTime("", TEXAS), { message: /got ""$/ });
});

Deno.test("parseDateTime() rejects fields out of range", () => {
  const cases: [string, RegExp][] = [
    ["13/03/2025 02:15 PM", /month 13 is out of range 1-12$/],
    ["02/29/2025 02:15 PM", /day 29 is out of range 1-28 for 2025-02$/],
    ["04/31/2025 02:15 PM", /day 31 is out of range 1-30 for 2025-04$/],
    ["09/03/2025 13:15 PM", /hour 13 is out of range 1-12$/],
    ["09/03/2025 00:15 AM", /hour 0 is out of range 1-12$/],
    ["09/03/2025 02:60 PM", /minute 60 is out of range 0-59$/],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => parseDateTime(value, TEXAS), { message }, value);
  }
  assert.equal(parseDateTime("02/29/2024 02:15 PM", TEXAS).toString(), "2024-02-29T20:15:00Z");
  assert.throws(
    () => parseDateTime("2025-09-03 24:00:00", { format: "yyyy-MM-dd HH:mm:ss", zone: "UTC" }),
    { message: /hour 24 is out of range 0-23$/ },
  );
});

Deno.test("parseDateTime() rejects bad epochs and ISO text", () => {
  assert.throws(() => parseDateTime("soon", { format: "epoch-ms" }), {
    message: 'expected epoch milliseconds, got "soon"',
  });
  assert.throws(() => parseDateTime("", { format: "epoch-s" }), {
    message: 'expected epoch seconds, got ""',
  });
  assert.throws(() => parseDateTime(1.5, { format: "epoch-ms" }), {
    message: /expected epoch milliseconds/,
  });
  assert.throws(() => parseDateTime("03/09/2025", { format: "iso", zone: "UTC" }), {
    message: 'expected an ISO 8601 date like "2025-09-03T14:15:00-05:00", got "03/09/2025"',
  });
});

Deno.test("dateParser() rejects unusable formats and zones up front", () => {
  assert.throws(() => dateParser({ format: "MM/dd/yy", zone: "UTC" }), {
    message: /^Invalid date format "MM\/dd\/yy": unsupported token "yy"/,
  });
  assert.throws(() => dateParser({ format: "MM/dd/yyyy HH:mm a", zone: "UTC" }), {
    message: /"a" \(AM\/PM\) goes with "hh" or "h"/,
  });
  assert.throws(() => dateParser({ format: "MM/dd/yyyy hh:mm", zone: "UTC" }), {
    message: /"hh" or "h" \(12-hour clock\) and "a" \(AM\/PM\) go together/,
  });
  assert.throws(() => dateParser({ format: "MM/yyyy", zone: "UTC" }), {
    message: /a date needs "dd"/,
  });
  assert.throws(() => dateParser({ format: "MM/dd/yyyy" }), {
    message: 'Cannot parse dates like "MM/dd/yyyy": a zone is required for local times',
  });
  assert.throws(() => dateParser({ format: "iso", zone: "America/Chikago" }), {
    message: /^Unknown time zone "America\/Chikago"/,
  });
});

Deno.test("formatInstant() renders iso-utc and defaults iso-offset to UTC", () => {
  const instant = Temporal.Instant.from("2025-09-03T19:15:00Z");
  assert.equal(formatInstant(instant, { style: "iso-utc" }), "2025-09-03T19:15:00Z");
  assert.equal(formatInstant(instant, { style: "iso-offset" }), "2025-09-03T19:15:00+00:00");
});

Deno.test("dateFormatSchema and zoneSchema accept good values and name bad ones", () => {
  assert.equal(dateFormatSchema.parse("MM/dd/yyyy hh:mm a"), "MM/dd/yyyy hh:mm a");
  assert.equal(dateFormatSchema.parse("epoch-ms"), "epoch-ms");
  const bad = dateFormatSchema.safeParse("dd.MM.yy");
  assert.equal(bad.success, false);
  assert.match(bad.error!.issues[0].message, /unsupported token "yy"/);
  assert.equal(zoneSchema.parse("Africa/Nairobi"), "Africa/Nairobi");
  assert.equal(zoneSchema.safeParse("Mars/Olympus").success, false);
  assert.equal(isLocalFormat("iso"), false);
  assert.equal(isLocalFormat("yyyy-MM-dd"), true);
});

Deno.test("dateParser() places wall times exactly as Temporal does around every kind of transition", () => {
  // Hour-long DST (Chicago, London), a 30-minute one (Lord Howe), a midnight
  // gap (Santiago), no DST (Nairobi), and a zone that changed its offset (Samoa skipped a day).
  const days = [
    ["America/Chicago", "2025-03-09"],
    ["America/Chicago", "2025-11-02"],
    ["Europe/London", "2025-03-30"],
    ["Europe/London", "2025-10-26"],
    ["Australia/Lord_Howe", "2025-04-06"],
    ["Australia/Lord_Howe", "2025-10-05"],
    ["America/Santiago", "2025-09-07"],
    ["America/Santiago", "2025-04-06"],
    ["Africa/Nairobi", "2026-06-15"],
    ["Pacific/Apia", "2011-12-29"],
    ["Pacific/Apia", "2011-12-31"],
  ] as const;
  for (const [zone, date] of days) {
    const parse = dateParser({ format: "yyyy-MM-dd HH:mm:ss", zone });
    const start = Temporal.PlainDate.from(date).subtract({ days: 1 }).toPlainDateTime();
    // Twice over, so the second pass answers from the per-hour cache.
    for (const pass of [1, 2]) {
      for (let minutes = 0; minutes < 3 * 24 * 60; minutes += 7) {
        const wall = start.add({ minutes, seconds: minutes % 60 });
        const text = wall.toString().replace("T", " ");
        const expected = wall.toZonedDateTime(zone, { disambiguation: "compatible" }).toInstant();
        assert.equal(parse(text).toString(), expected.toString(), `${zone} ${text} (pass ${pass})`);
      }
    }
  }
});

Deno.test("formatEpochMs() writes what formatInstant() writes, fractions and edge years included", () => {
  const samples = [
    0,
    1,
    10,
    100,
    120,
    123,
    500,
    -1,
    -1_000,
    Date.UTC(1000, 0, 1),
    Date.UTC(1000, 0, 1) - 1,
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(10000, 0, 1),
    Date.UTC(-5, 0, 1),
    8.64e15,
    -8.64e15,
  ];
  // A deterministic spread of instants with every kind of millisecond part.
  for (let i = 0; i < 2000; i++) samples.push(Math.round(Math.sin(i + 1) * 4e13) + (i % 1000));
  for (const ms of samples) {
    const instant = Temporal.Instant.fromEpochMilliseconds(ms);
    for (const style of ["iso-utc", "epoch-ms", "iso-offset"] as const) {
      for (const zone of ["Africa/Nairobi", "America/Chicago", "Asia/Kolkata", undefined]) {
        const options = { style, zone };
        assert.equal(
          formatEpochMs(ms, options),
          formatInstant(instant, options),
          `${ms} ${style} ${zone}`,
        );
      }
    }
  }
  // Around transitions: every 7 minutes over three days, in zones with odd rules.
  const transitions = [
    ["America/Chicago", "2025-03-09"],
    ["America/Chicago", "2025-11-02"],
    ["Australia/Lord_Howe", "2025-04-06"],
    ["Australia/Lord_Howe", "2025-10-05"],
    ["America/Santiago", "2025-09-07"],
    ["Pacific/Apia", "2011-12-29"],
    ["Europe/Amsterdam", "1937-07-01"],
  ] as const;
  for (const [zone, date] of transitions) {
    const start = Temporal.PlainDate.from(date).toZonedDateTime({ timeZone: "UTC" })
      .epochMilliseconds - 86_400_000;
    for (let ms = start; ms < start + 3 * 86_400_000; ms += 7 * 60_000 + 1_001) {
      const options = { style: "iso-offset" as const, zone };
      const expected = formatInstant(Temporal.Instant.fromEpochMilliseconds(ms), options);
      assert.equal(formatEpochMs(ms, options), expected, `${zone} ${ms}`);
    }
  }
});

Deno.test("epochMsParser() iso reads canonical UTC text as Temporal does and rejects what it rejects", () => {
  const parse = epochMsParser({ format: "iso" });
  for (
    const text of [
      "2025-09-03T19:15:00Z",
      "2025-09-03T19:15:00.5Z",
      "2025-09-03T19:15:00.123Z",
      "2024-02-29T23:59:59.999Z",
      "2025-09-03T19:15:00.123456Z",
      "2025-09-03t19:15:00z",
      "2025-09-03T22:15:00+03:00",
      "0099-01-01T00:00:00Z",
      "2016-12-31T23:59:60Z",
    ]
  ) {
    assert.equal(parse(text), Temporal.Instant.from(text).epochMilliseconds, text);
  }
  for (const text of ["2025-02-29T00:00:00Z", "2025-13-01T00:00:00Z", "2025-09-03T24:00:00Z"]) {
    assert.throws(() => Temporal.Instant.from(text), RangeError, text);
    assert.throws(() => parse(text), /expected an ISO 8601 date/, text);
  }
});

Deno.test("epochMsParser() patterns and epochs give the milliseconds of dateParser()'s instant", () => {
  const nairobi = { format: "yyyy-MM-dd HH:mm:ss", zone: "Africa/Nairobi" };
  assert.equal(
    epochMsParser(nairobi)("2026-06-15 17:00:00"),
    Temporal.Instant.from("2026-06-15T14:00:00Z").epochMilliseconds,
  );
  // The fixed-width fast path and the regex path agree (two spaces and a tab take the regex).
  for (const text of ["2026-06-15 17:00:00", "2026-06-15  17:00:00", "2026-06-15\t17:00:00"]) {
    assert.equal(epochMsParser(nairobi)(text), Date.UTC(2026, 5, 15, 14), JSON.stringify(text));
  }
  assert.throws(() => epochMsParser(nairobi)("2026-06-15T17:00:00"), /expected a date like/);
  assert.throws(() => epochMsParser(nairobi)("2026-06-1x 17:00:00"), /expected a date like/);
  const withMs = { format: "yyyy-MM-dd'T'HH:mm:ss.SSS", zone: "UTC" };
  assert.equal(
    epochMsParser(withMs)("1999-12-31T23:59:59.042"),
    Date.UTC(1999, 11, 31, 23, 59, 59, 42),
  );
  assert.equal(epochMsParser({ format: "epoch-s" })("1700000000"), 1_700_000_000_000);
  assert.throws(() => epochMsParser({ format: "epoch-ms" })("9000000000000000"), /out of range/);
  assert.throws(() => epochMsParser(nairobi)("2026-02-30 10:00:00"), /day 30 is out of range 1-28/);
});

Deno.test("parseDateTime() reads '' inside a quoted literal as a quote", () => {
  assert.equal(
    parseDateTime("2025-01-01 o'clock 10", { format: "yyyy-MM-dd 'o''clock' HH", zone: "UTC" })
      .toString(),
    "2025-01-01T10:00:00Z",
  );
});
