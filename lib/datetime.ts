/**
 * Dates and times with explicit input formats and zones, on Temporal.
 *
 * Formats are a subset of the Unicode / Luxon tokens — `yyyy MM M dd d HH H hh
 * h mm ss SSS a` — plus literal characters (quote letters as `'T'`), or one of
 * the special formats `iso`, `epoch-ms`, `epoch-s`. A space in a pattern
 * matches one or more whitespace characters; everything else is literal.
 *
 * Local wall times are placed in an IANA zone with Temporal's `"compatible"`
 * disambiguation: a time that falls in a spring-forward gap moves forward by
 * the gap's length (02:30 on the day clocks jump 02:00 -> 03:00 becomes 03:30),
 * and a time that occurs twice at fall-back takes the earlier one (the offset
 * before the change).
 * @module
 */
import { z } from "zod";

/** Input formats with a special meaning (not patterns). */
export const SPECIAL_DATE_FORMATS = ["iso", "epoch-ms", "epoch-s"] as const;

/** How {@linkcode formatInstant} renders an instant. */
export type InstantStyle = "iso-offset" | "iso-utc" | "epoch-ms";

/** Options of {@linkcode parseDateTime}. */
export interface ParseDateTimeOptions {
  /** A pattern such as `MM/dd/yyyy hh:mm a`, or `iso`, `epoch-ms`, `epoch-s`. */
  format: string;
  /** IANA zone for local times (required for patterns; used by `iso` values without an offset). */
  zone?: string;
}

/** Options of {@linkcode formatInstant}. */
export interface FormatInstantOptions {
  /** IANA zone for `iso-offset` (default `UTC`). */
  zone?: string;
  style: InstantStyle;
}

type Unit = "year" | "month" | "day" | "hour" | "hour12" | "minute" | "second" | "millisecond";

const TOKENS: Record<
  string,
  { unit: Unit; source: string } | { unit: "meridiem"; source: string }
> = {
  yyyy: { unit: "year", source: "(\\d{4})" },
  MM: { unit: "month", source: "(\\d{2})" },
  M: { unit: "month", source: "(\\d{1,2})" },
  dd: { unit: "day", source: "(\\d{2})" },
  d: { unit: "day", source: "(\\d{1,2})" },
  HH: { unit: "hour", source: "(\\d{2})" },
  H: { unit: "hour", source: "(\\d{1,2})" },
  hh: { unit: "hour12", source: "(\\d{2})" },
  h: { unit: "hour12", source: "(\\d{1,2})" },
  mm: { unit: "minute", source: "(\\d{2})" },
  ss: { unit: "second", source: "(\\d{2})" },
  SSS: { unit: "millisecond", source: "(\\d{3})" },
  a: { unit: "meridiem", source: "([AaPp][Mm])" },
};

/** A pattern turned into a regular expression and the unit of each capture group. */
interface CompiledPattern {
  pattern: string;
  regex: RegExp;
  units: (Unit | "meridiem")[];
  /** For a pattern of fixed-width numbers and literals: where each number is. */
  fixed: FixedLayout | null;
}

/** Positions in text of a fixed-width pattern like `yyyy-MM-dd HH:mm:ss`. */
interface FixedLayout {
  length: number;
  /** Unit index (see FIELD), start and width of each number. */
  numbers: [number, number, number][];
  /** Position and char code of each literal; -1 for a whitespace position. */
  literals: [number, number][];
}

/** Slots of a parsed date's fields, in the order the scratch array holds them. */
const FIELD: Partial<Record<Unit, number>> = {
  year: 0,
  month: 1,
  day: 2,
  hour: 3,
  minute: 4,
  second: 5,
  millisecond: 6,
};
const FIXED_WIDTH: Record<string, number> = { yyyy: 4, MM: 2, dd: 2, HH: 2, mm: 2, ss: 2, SSS: 3 };

const patternCache = new Map<string, CompiledPattern>();

/** Compiles a pattern once; throws `Error` naming the pattern when it is not usable. */
function compilePattern(pattern: string): CompiledPattern {
  const cached = patternCache.get(pattern);
  if (cached) return cached;
  const fail = (detail: string): never => {
    throw new Error(`Invalid date format ${JSON.stringify(pattern)}: ${detail}`);
  };
  let source = "";
  const units: (Unit | "meridiem")[] = [];
  let fixed: FixedLayout | null = { length: 0, numbers: [], literals: [] };
  let index = 0;
  while (index < pattern.length) {
    const char = pattern[index];
    if (char === "'") {
      // Quoted literal; '' inside or outside quotes is a literal quote.
      let text = "";
      let end = index + 1;
      if (pattern[end] === "'") {
        text = "'";
      } else {
        for (;;) {
          const close = pattern.indexOf("'", end);
          if (close === -1) fail("unterminated quote");
          text += pattern.slice(end, close);
          if (pattern[close + 1] !== "'") {
            end = close;
            break;
          }
          text += "'";
          end = close + 2;
        }
      }
      source += escapeRegex(text);
      if (fixed) {
        for (const char of text) fixed.literals.push([fixed.length++, char.charCodeAt(0)]);
      }
      index = end + 1;
    } else if (/[A-Za-z]/.test(char)) {
      let end = index;
      while (pattern[end] === char) end++;
      const token = pattern.slice(index, end);
      const spec = TOKENS[token];
      if (!spec) {
        fail(
          `unsupported token ${
            JSON.stringify(token)
          } (supported: yyyy MM M dd d HH H hh h mm ss SSS a; quote other letters, as in 'T')`,
        );
      }
      if (units.includes(spec.unit)) fail(`${JSON.stringify(token)} repeats a field`);
      units.push(spec.unit);
      source += spec.source;
      const width = FIXED_WIDTH[token];
      if (fixed && width !== undefined) {
        fixed.numbers.push([FIELD[spec.unit as Unit]!, fixed.length, width]);
        fixed.length += width;
      } else {
        fixed = null;
      }
      index = end;
    } else if (/\s/.test(char)) {
      while (/\s/.test(pattern[index + 1] ?? "")) index++;
      source += "\\s+";
      fixed?.literals.push([fixed.length++, -1]);
      index++;
    } else {
      source += escapeRegex(char);
      if (char.length !== 1 || char.charCodeAt(0) > 0xd7ff) fixed = null;
      fixed?.literals.push([fixed.length++, char.charCodeAt(0)]);
      index++;
    }
  }
  for (const [unit, token] of [["year", "yyyy"], ["month", "MM"], ["day", "dd"]] as const) {
    if (!units.includes(unit)) fail(`a date needs ${JSON.stringify(token)}`);
  }
  if (units.includes("hour") && units.includes("meridiem")) {
    fail(`"a" (AM/PM) goes with "hh" or "h", not "HH" or "H"`);
  }
  if (units.includes("hour12") !== units.includes("meridiem")) {
    fail(`"hh" or "h" (12-hour clock) and "a" (AM/PM) go together`);
  }
  const compiled: CompiledPattern = { pattern, regex: new RegExp(`^${source}$`), units, fixed };
  patternCache.set(pattern, compiled);
  return compiled;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  if (month !== 2) return MONTH_DAYS[month - 1];
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
}

/** Checks that `zone` is a time zone Temporal knows; throws `Error` otherwise. */
function checkZone(zone: string): void {
  try {
    Temporal.PlainDateTime.from("2000-01-01T00:00").toZonedDateTime(zone);
  } catch {
    throw new Error(
      `Unknown time zone ${JSON.stringify(zone)}: expected an IANA name like "America/Chicago"`,
    );
  }
}

/** Whether `zone` is an IANA time zone name Temporal knows. */
export function isValidZone(zone: string): boolean {
  try {
    checkZone(zone);
    return true;
  } catch {
    return false;
  }
}

/** Whether `format` is a pattern (local wall time), so it needs a zone. */
export function isLocalFormat(format: string): boolean {
  return !(SPECIAL_DATE_FORMATS as readonly string[]).includes(format);
}

/** Throws `Error` with a plain message when `format` is neither special nor a usable pattern. */
export function checkDateFormat(format: string): void {
  if (isLocalFormat(format)) compilePattern(format);
}

/** A parse function for one format and zone, validated and compiled once. */
export type DateParser = (value: string | number) => Temporal.Instant;

/**
 * A parse function to epoch milliseconds. Patterns and epochs are exact; an
 * `iso` value with digits below the millisecond is rounded down to one.
 */
export type EpochMsParser = (value: string | number) => number;

/**
 * Returns a parser for `format` in `zone`, validating both now (throws `Error`
 * with a plain message) so a hot loop pays only for matching.
 */
export function dateParser(options: ParseDateTimeOptions): DateParser {
  const { format, zone } = options;
  if (format === "iso") {
    if (zone !== undefined) checkZone(zone);
    return function parseIso(value) {
      return parseIsoValue(value, zone);
    };
  }
  const toMs = epochMsParser(options);
  return function parseToInstant(value) {
    return Temporal.Instant.fromEpochMilliseconds(toMs(value));
  };
}

/**
 * Like {@linkcode dateParser}, to epoch milliseconds: no Temporal object per
 * value on the common paths (a pattern in an hour without a clock change, a
 * canonical UTC ISO string), which is most of the cost of a date column.
 */
export function epochMsParser(options: ParseDateTimeOptions): EpochMsParser {
  const { format, zone } = options;
  if (zone !== undefined) checkZone(zone);
  switch (format) {
    case "iso":
      return function parseIsoMs(value) {
        return parseIsoUtcFast(value) ?? parseIsoValue(value, zone).epochMilliseconds;
      };
    case "epoch-ms":
      return function parseEpochMs(value) {
        return parseEpoch(value, 1, "epoch milliseconds");
      };
    case "epoch-s":
      return function parseEpochS(value) {
        return parseEpoch(value, 1000, "epoch seconds");
      };
  }
  const compiled = compilePattern(format);
  if (zone === undefined) {
    throw new Error(
      `Cannot parse dates like ${JSON.stringify(format)}: a zone is required for local times`,
    );
  }
  return function parseLocal(value) {
    return parsePattern(compiled, value, zone);
  };
}

const parserCache = new Map<string, DateParser>();

/**
 * Parses `value` in `format` to an instant. Patterns and offset-less `iso`
 * values are read as wall time in `zone` (DST gaps and overlaps resolved with
 * Temporal's `"compatible"` disambiguation, see the module doc). Throws `Error`
 * with a plain message: `expected a date like "MM/dd/yyyy hh:mm a", got "13/45/2025 99:99 XM"`.
 */
export function parseDateTime(
  value: string | number,
  options: ParseDateTimeOptions,
): Temporal.Instant {
  const cacheKey = `${options.format}\u0000${options.zone ?? ""}`;
  let parser = parserCache.get(cacheKey);
  if (!parser) {
    parser = dateParser(options);
    parserCache.set(cacheKey, parser);
  }
  return parser(value);
}

function parsePattern(
  compiled: CompiledPattern,
  value: string | number,
  zone: string,
): number {
  const text = String(value).trim();
  const expected = () =>
    `expected a date like ${JSON.stringify(compiled.pattern)}, got ${JSON.stringify(text)}`;
  let year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0, millisecond = 0;
  let hour12 = 0;
  let pm: boolean | undefined;
  if (compiled.fixed && readFixed(compiled.fixed, text)) {
    year = SCRATCH[0];
    month = SCRATCH[1];
    day = SCRATCH[2];
    hour = SCRATCH[3];
    minute = SCRATCH[4];
    second = SCRATCH[5];
    millisecond = SCRATCH[6];
  } else {
    const match = compiled.regex.exec(text);
    if (!match) throw new Error(expected());
    const units = compiled.units;
    for (let index = 0; index < units.length; index++) {
      const unit = units[index];
      const raw = match[index + 1];
      if (unit === "meridiem") pm = raw.toLowerCase() === "pm";
      else if (unit === "year") year = Number(raw);
      else if (unit === "month") month = Number(raw);
      else if (unit === "day") day = Number(raw);
      else if (unit === "hour") hour = Number(raw);
      else if (unit === "hour12") hour12 = Number(raw);
      else if (unit === "minute") minute = Number(raw);
      else if (unit === "second") second = Number(raw);
      else millisecond = Number(raw);
    }
  }
  const outOfRange = (detail: string): never => {
    throw new Error(`${expected()}: ${detail}`);
  };
  if (month < 1 || month > 12) outOfRange(`month ${month} is out of range 1-12`);
  const lastDay = daysInMonth(year, month);
  if (day < 1 || day > lastDay) {
    outOfRange(
      `day ${day} is out of range 1-${lastDay} for ${year}-${String(month).padStart(2, "0")}`,
    );
  }
  if (pm !== undefined) {
    if (hour12 < 1 || hour12 > 12) outOfRange(`hour ${hour12} is out of range 1-12`);
    hour = (hour12 % 12) + (pm ? 12 : 0);
  } else if (hour > 23) {
    outOfRange(`hour ${hour} is out of range 0-23`);
  }
  if (minute > 59) outOfRange(`minute ${minute} is out of range 0-59`);
  if (second > 59) outOfRange(`second ${second} is out of range 0-59`);
  const offsetMs = hourOffsetMs(year, month, day, hour, zone);
  if (offsetMs !== null) {
    return utcMs(year, month, day, hour, minute, second, millisecond) - offsetMs;
  }
  return new Temporal.PlainDateTime(year, month, day, hour, minute, second, millisecond)
    .toZonedDateTime(zone, { disambiguation: "compatible" })
    .epochMilliseconds;
}

/** Fields read by {@linkcode readFixed}: year, month, day, hour, minute, second, millisecond. */
const SCRATCH = [0, 1, 1, 0, 0, 0, 0];

/**
 * Reads a fixed-width pattern's numbers into SCRATCH with char codes (a regex
 * match and its capture strings cost more than the rest of a date). `false`
 * when the text does not fit exactly: the regex path then decides.
 */
function readFixed(layout: FixedLayout, text: string): boolean {
  if (text.length !== layout.length) return false;
  const literals = layout.literals;
  for (let i = 0; i < literals.length; i++) {
    const code = text.charCodeAt(literals[i][0]);
    const want = literals[i][1];
    if (want === -1 ? code !== 32 && code !== 9 : code !== want) return false;
  }
  SCRATCH[1] = 1;
  SCRATCH[2] = 1;
  SCRATCH[3] =
    SCRATCH[4] =
    SCRATCH[5] =
    SCRATCH[6] =
      0;
  const numbers = layout.numbers;
  for (let i = 0; i < numbers.length; i++) {
    const [field, start, width] = numbers[i];
    let value = 0;
    for (let at = start; at < start + width; at++) {
      const digit = text.charCodeAt(at) - 48;
      if (digit < 0 || digit > 9) return false;
      value = value * 10 + digit;
    }
    SCRATCH[field] = value;
  }
  return true;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** `Date.UTC` for valid fields (month 1-12), without the Date machinery. */
function utcMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  millisecond: number,
): number {
  return daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 +
    second * 1000 + millisecond;
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, "0"));

/** `YYYY-MM-DDT` by day number: exports hold many instants of few days. */
const dayPrefixes = new Map<number, string>();

/**
 * `Temporal.Instant#toString()` of a four-digit-year instant, by arithmetic
 * (Hinnant's civil_from_days): fraction digits only as needed (.5Z, .12Z,
 * none for whole seconds). With another `suffix` (an offset), the same for
 * the wall time `ms` stands for.
 */
function isoUtcString(ms: number, suffix = "Z"): string {
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  let prefix = dayPrefixes.get(days);
  if (prefix === undefined) {
    const z = days + 719468;
    const era = Math.floor(z / 146097);
    const doe = z - era * 146097;
    const yoe = Math.floor(
      (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
    );
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    const mp = Math.floor((5 * doy + 2) / 153);
    const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
    const month = mp < 10 ? mp + 3 : mp - 9;
    const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    prefix = `${year}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T`;
    if (dayPrefixes.size >= 10_000) dayPrefixes.clear();
    dayPrefixes.set(days, prefix);
  }
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const fraction = rest - second * 1000;
  const base = `${prefix}${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[second]}`;
  if (fraction === 0) return `${base}${suffix}`;
  const digits = fraction % 100 === 0
    ? String(fraction / 100)
    : fraction % 10 === 0
    ? TWO_DIGITS[fraction / 10]
    : String(fraction).padStart(3, "0");
  return `${base}.${digits}${suffix}`;
}

/**
 * Values by zone and hour number, each computed once (with Temporal) and kept
 * up to 100,000 per zone. Placing a wall time in a zone with Temporal costs
 * microseconds, and exports have 100,000s of them in few distinct hours.
 */
function cachedByZoneHour<T>(
  compute: (zone: string, hour: number) => T,
): (zone: string, hour: number) => T {
  const byZone = new Map<string, Map<number, T>>();
  return function cached(zone, hour) {
    let values = byZone.get(zone);
    if (!values) {
      values = new Map();
      byZone.set(zone, values);
    }
    let value = values.get(hour);
    if (value === undefined) {
      value = compute(zone, hour);
      if (values.size >= 100_000) values.clear();
      values.set(hour, value);
    }
    return value;
  };
}

/**
 * The offset every wall time of this hour takes in `zone` (with "compatible"
 * disambiguation), or `null` when that is not one offset: the hour is in a
 * gap, or a transition falls inside it, or the year is outside 1000-9999
 * (`Date.UTC` reads years 0-99 as 1900-1999).
 *
 * Sound because the hour's start is placed by Temporal, and when the zone's
 * next transition is at least an hour later, the whole hour (start to start +
 * 1 h in instants) has the start's offset. At a fall-back overlap that is the
 * earlier offset, as "compatible" wants.
 */
function hourOffsetMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  zone: string,
): number | null {
  if (year < 1000 || year > 9999) return null;
  return wallHourOffset(zone, ((year * 16 + month) * 32 + day) * 32 + hour);
}

/** {@linkcode hourOffsetMs} by a wall hour packed as `((year * 16 + month) * 32 + day) * 32 + hour`. */
const wallHourOffset = cachedByZoneHour((zone, packed): number | null => {
  const hour = packed % 32;
  const day = Math.floor(packed / 32) % 32;
  const month = Math.floor(packed / 1024) % 16;
  const year = Math.floor(packed / 16384);
  const start = new Temporal.PlainDateTime(year, month, day, hour)
    .toZonedDateTime(zone, { disambiguation: "compatible" });
  const next = start.getTimeZoneTransition("next");
  // The hour's start exists as written (not moved forward out of a gap)...
  const exists = start.day === day && start.hour === hour && start.minute === 0 &&
    start.second === 0;
  // ...and the offset holds for the whole hour.
  const whole = exists &&
    (next === null || next.epochMilliseconds - start.epochMilliseconds >= 3_600_000);
  return whole ? start.offsetNanoseconds / 1_000_000 : null;
});

const ISO_EXAMPLE = `expected an ISO 8601 date like "2025-09-03T14:15:00-05:00"`;

function parseIsoValue(value: string | number, zone: string | undefined): Temporal.Instant {
  if (typeof value !== "string") throw new Error(`${ISO_EXAMPLE}, got ${value}`);
  const text = value.trim();
  try {
    return Temporal.Instant.from(text);
  } catch {
    // No offset (or not ISO at all): try it as wall time in the zone.
  }
  let local: Temporal.PlainDateTime;
  try {
    if (text.includes("[")) return Temporal.ZonedDateTime.from(text).toInstant();
    local = Temporal.PlainDateTime.from(text);
  } catch {
    throw new Error(`${ISO_EXAMPLE}, got ${JSON.stringify(text)}`);
  }
  if (zone === undefined) {
    throw new Error(
      `${ISO_EXAMPLE}, got ${JSON.stringify(text)} without an offset and no zone to read it in`,
    );
  }
  return local.toZonedDateTime(zone, { disambiguation: "compatible" }).toInstant();
}

/** `2025-09-03T19:15:00Z` or with up to three fraction digits: what iso-utc output looks like. */
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?Z$/;

/**
 * Epoch milliseconds of a canonical UTC ISO string, or `undefined` for
 * anything else (left to Temporal, which also owns the error messages).
 */
function parseIsoUtcFast(value: string | number): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = ISO_UTC.exec(value);
  if (!match) return undefined;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const hour = Number(match[4]);
  const minute = Number(match[5]);
  const second = Number(match[6]);
  // Years below 1000 (Date.UTC reads 0-99 as 19xx) and leap seconds go to Temporal.
  if (
    year < 1000 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) ||
    hour > 23 || minute > 59 || second > 59
  ) {
    return undefined;
  }
  const fraction = match[7] === undefined ? 0 : Number(match[7].padEnd(3, "0"));
  return utcMs(year, month, day, hour, minute, second, fraction);
}

const NUMERIC = /^-?\d+(\.\d+)?$/;

function parseEpoch(value: string | number, scale: number, name: string): number {
  const number = typeof value === "number"
    ? value
    : NUMERIC.test(value.trim())
    ? Number(value)
    : NaN;
  const ms = number * scale;
  if (!Number.isFinite(ms) || (scale === 1 && !Number.isInteger(ms))) {
    throw new Error(`expected ${name}, got ${JSON.stringify(value)}`);
  }
  const rounded = Math.round(ms);
  // Temporal's range: 10^8 days either side of the epoch.
  if (Math.abs(rounded) > 8.64e15) {
    throw new Error(`expected ${name}, got ${JSON.stringify(value)}: out of range`);
  }
  return rounded;
}

/**
 * Renders an instant: `iso-offset` is local time with its offset in `zone`
 * (`2025-09-03T14:15:00-05:00`; default zone UTC), `iso-utc` is
 * `2025-09-03T19:15:00Z`, `epoch-ms` is a number of milliseconds.
 */
export function formatInstant(
  instant: Temporal.Instant,
  options: { zone?: string; style: "epoch-ms" },
): number;
export function formatInstant(
  instant: Temporal.Instant,
  options: { zone?: string; style: "iso-offset" | "iso-utc" },
): string;
export function formatInstant(
  instant: Temporal.Instant,
  options: FormatInstantOptions,
): string | number;
export function formatInstant(
  instant: Temporal.Instant,
  options: FormatInstantOptions,
): string | number {
  switch (options.style) {
    case "epoch-ms":
      return instant.epochMilliseconds;
    case "iso-utc":
      return instant.toString();
    case "iso-offset":
      return instant.toZonedDateTimeISO(options.zone ?? "UTC").toString({ timeZoneName: "never" });
  }
}

/** The earliest and latest instants `Date` renders with a four-digit year. */
const FOUR_DIGIT_YEARS = [Date.UTC(1000, 0, 1), Date.UTC(10000, 0, 1)];

/**
 * {@linkcode formatInstant} of epoch milliseconds, without a Temporal object
 * for `iso-utc` (years 1000-9999) and `epoch-ms`; the output is the same.
 */
export function formatEpochMs(ms: number, options: FormatInstantOptions): string | number {
  if (options.style === "epoch-ms") return ms;
  // A day's margin, so the local wall time also has four digits.
  if (ms >= FOUR_DIGIT_YEARS[0] + 86_400_000 && ms < FOUR_DIGIT_YEARS[1] - 86_400_000) {
    if (options.style === "iso-utc") return isoUtcString(ms);
    const offset = utcHourOffset(ms, options.zone ?? "UTC");
    if (offset !== null) return isoUtcString(ms + offset.ms, offset.text);
  }
  return formatInstant(Temporal.Instant.fromEpochMilliseconds(ms), options);
}

/** A zone's offset during one UTC hour: milliseconds and `+HH:MM` as Temporal writes it. */
interface HourOffset {
  ms: number;
  text: string;
}

/**
 * The offset `zone` has for the whole UTC hour holding `ms`, or `null` when
 * a transition falls inside that hour or the offset is not whole minutes
 * (old local mean times): those instants are left to Temporal.
 */
function utcHourOffset(ms: number, zone: string): HourOffset | null {
  return utcHourOffsets(zone, Math.floor(ms / 3_600_000));
}

const utcHourOffsets = cachedByZoneHour((zone, hour): HourOffset | null => {
  const start = Temporal.Instant.fromEpochMilliseconds(hour * 3_600_000).toZonedDateTimeISO(zone);
  const next = start.getTimeZoneTransition("next");
  const whole = next === null || next.epochMilliseconds >= (hour + 1) * 3_600_000;
  const minutes = start.offsetNanoseconds / 60e9;
  if (!whole || !Number.isInteger(minutes)) return null;
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return {
    ms: minutes * 60_000,
    text: `${sign}${TWO_DIGITS[Math.floor(abs / 60)]}:${TWO_DIGITS[abs % 60]}`,
  };
});

/** An input date format: a pattern like `MM/dd/yyyy hh:mm a`, or `iso`, `epoch-ms`, `epoch-s`. */
export const dateFormatSchema = z.string().min(1).superRefine(function checkFormat(format, ctx) {
  try {
    checkDateFormat(format);
  } catch (error) {
    // The message quotes the format already: no ", got ..." suffix from the config loader.
    const message = (error as Error).message.replace(/^Invalid/, "invalid");
    ctx.addIssue({ code: "custom", message, input: undefined });
  }
}).describe(
  'Input date format: a pattern of yyyy MM M dd d HH H hh h mm ss SSS a and literals (e.g. "MM/dd/yyyy hh:mm a"), or "iso", "epoch-ms", "epoch-s"',
);

/** An IANA time zone name such as `America/Chicago`. */
export const zoneSchema = z.string().min(1).refine(isValidZone, {
  message: 'expected an IANA time zone like "America/Chicago"',
}).describe('IANA time zone, e.g. "America/Chicago" or "Africa/Nairobi"');

/** How a date is written out. */
export const instantStyleSchema = z.enum(["iso-offset", "iso-utc", "epoch-ms"]).describe(
  'Output: "iso-offset" (local time with offset in the zone), "iso-utc" (…Z) or "epoch-ms"',
);
