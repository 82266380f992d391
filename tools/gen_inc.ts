/**
 * Writes a deterministic INC snapshot CSV for benchmarks: the 32-column header
 * of the hourly export, the "EXPORT STOPPED..." sentinel as the first data row,
 * then `--rows` tickets (default 31,434, of which ~32% are alarm rows: 10,132
 * at the default size), every value double-quoted, empty latitude/longitude and
 * EAT timestamps. Rows are streamed to the file in chunks, so any size fits in
 * a few MB of memory.
 *
 * ```sh
 * deno run -A tools/gen_inc.ts --rows 31434 --out bench/out/inc.csv
 * deno run -A tools/gen_inc.ts --rows 31434 --tick 1 --out bench/out/inc_next.csv
 * ```
 *
 * `--tick N` moves the same ticket set N hours on: more tickets are closed and
 * `last_seen_at` advances, as in the next hourly snapshot.
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";

/** The export's 32 columns, in file order. */
export const INC_COLUMNS = [
  "ticket_id",
  "is_alarm",
  "is_actionable",
  "region",
  "raw_status",
  "status",
  "sla_status",
  "mttr",
  "created_at_service",
  "closed_at",
  "created_at",
  "updated_at",
  "first_seen_at",
  "last_seen_at",
  "bucket",
  "week_start",
  "week_end",
  "source_s3_bucket",
  "source_s3_key",
  "source_snapshot_id",
  "department",
  "source_type",
  "service_type",
  "assigned_team",
  "owner",
  "latitude",
  "longitude",
  "town",
  "location",
  "cluster",
  "priority",
  "description",
] as const;

/** The garbage first data row of the export. */
export const SENTINEL =
  "EXPORT STOPPED DUE TO EXCESSIVE SIZE. Narrow the date range to export all rows.";

/** Alarm share of the live sample: 10,132 of 31,434 rows. */
const ALARM_RATIO = 10_132 / 31_434;

const TOWNS = [
  ["Nairobi", "Nairobi", "NBI", ["Kariobangi North", "Westlands", "Kilimani", "Embakasi", "Ruaka"]],
  ["Nakuru", "Rift Valley", "NKR", ["Kwa Ndege Estate", "Milimani", "Section 58", "Lanet"]],
  ["Mombasa", "Coast", "MSA", ["Nyali, Links Road", "Bamburi", "Tudor", "Likoni"]],
  ["Kisumu", "Nyanza", "KSM", ["Milimani", "Mamboleo", "Nyalenda"]],
  ["Eldoret", "Rift Valley", "ELD", ["Elgon View", "Langas", "Kapsoya"]],
  ["Thika", "Central", "THK", ["Makongeni", "Section 9"]],
] as const;
const STATUSES = [["open", "Open"], ["in progress", "In Progress"], [
  "pending customer",
  "Pending",
]];
const OWNERS = ["J. Mwangi", "P. Kiprop", "A. Hassan", "M. Otieno", "F. Wanjiru", ""];
const DESCRIPTIONS = [
  "No internet, LOS red",
  "Slow speeds",
  "Fibre cut",
  "Router faulty",
  "Intermittent link",
];

/** Options of {@linkcode generateInc}. */
export interface GenIncOptions {
  /** Ticket rows (the sentinel comes on top). */
  rows: number;
  /** Hours after the base snapshot (2026-06-15 17:00 EAT). */
  tick: number;
  /** PRNG seed. */
  seed: number;
}

/** mulberry32: small, fast and deterministic. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return function next() {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quote(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

function line(values: readonly string[]): string {
  return values.map(quote).join(",") + "\r\n";
}

const BASE = Temporal.PlainDateTime.from("2026-06-15T17:00:00");

/** `yyyy-MM-dd HH:mm:ss`, as the export writes EAT times. */
function eat(time: Temporal.PlainDateTime): string {
  return time.toString({ smallestUnit: "second" }).replace("T", " ");
}

/** Yields the CSV in chunks of about 1,000 lines. */
export function* generateInc(options: GenIncOptions): Generator<string> {
  const { rows, tick, seed } = options;
  const snapshot = BASE.add({ hours: tick });
  yield line(INC_COLUMNS);
  yield line(INC_COLUMNS.map((column) => column === "ticket_id" ? SENTINEL : ""));
  let chunk = "";
  for (let index = 0; index < rows; index++) {
    // Each row has its own PRNG so a row is the same whatever --rows is.
    const random = prng(seed * 1_000_003 + index);
    const alarm = Math.floor((index + 1) * ALARM_RATIO) > Math.floor(index * ALARM_RATIO);
    const [town, region, code, places] = TOWNS[Math.floor(random() * TOWNS.length)];
    const created = BASE.subtract({ minutes: 60 + Math.floor(random() * 60 * 24 * 20) });
    const closeAfter = 60 + Math.floor(random() * 60 * 24 * 4);
    // Every draw is made whatever the branch, so --tick changes statuses only.
    const closeRoll = random();
    const statusRoll = random();
    const closed = !alarm && created.add({ minutes: closeAfter }).until(snapshot).sign >= 0 &&
      closeRoll < 0.55 + Math.min(tick, 20) * 0.02;
    const [rawStatus, status] = closed
      ? ["closed", "Closed"]
      : STATUSES[Math.floor(statusRoll * 3)];
    const closedAt = created.add({ minutes: closeAfter });
    const serviceKnown = random() > 0.3;
    const values: Record<(typeof INC_COLUMNS)[number], string> = {
      ticket_id: `INC${String(100_000 + index).padStart(9, "0")}`,
      is_alarm: String(alarm),
      is_actionable: String(!alarm),
      region: random() < 0.5 ? region.toUpperCase() : region,
      raw_status: rawStatus,
      status,
      sla_status: closed ? (closeAfter <= 48 * 60 ? "Within SLA" : "Breached") : "",
      mttr: closed ? (closeAfter / 60 * 0.8).toFixed(1) : "",
      created_at_service: serviceKnown ? eat(created) : "",
      closed_at: closed ? eat(closedAt) : "",
      created_at: eat(created.add({ minutes: 5 })),
      updated_at: eat(closed ? closedAt : created.add({ minutes: 30 })),
      first_seen_at: eat(created.add({ minutes: 20 })),
      last_seen_at: eat(snapshot.subtract({ minutes: 2 })),
      bucket: closed ? "closed" : "pending",
      week_start: "2026-06-08",
      week_end: "2026-06-14",
      source_s3_bucket: "rahamafresh-exports",
      source_s3_key: "exports/wm_task.xlsx",
      source_snapshot_id: `snap-${snapshot.toPlainDate().toString()}`,
      department: "Field Operations",
      source_type: "wm_task",
      service_type: "FTTH",
      assigned_team: random() < 0.34 ? "" : `${town} Field`,
      owner: OWNERS[Math.floor(random() * OWNERS.length)],
      latitude: "",
      longitude: "",
      town,
      location: alarm
        ? `OLT-${code}-0${1 + Math.floor(random() * 4)}`
        : places[Math.floor(random() * places.length)],
      cluster: `${code}-${String(1 + Math.floor(random() * 9)).padStart(2, "0")}`,
      priority: alarm ? "P4" : `P${1 + Math.floor(random() * 3)}`,
      description: alarm
        ? "ONU dying gasp alarm"
        : DESCRIPTIONS[Math.floor(random() * DESCRIPTIONS.length)],
    };
    chunk += line(INC_COLUMNS.map((column) => values[column]));
    if ((index + 1) % 1_000 === 0) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk) yield chunk;
}

/** Writes {@linkcode generateInc}'s output to `path`, one chunk at a time. */
export async function writeInc(path: string, options: GenIncOptions): Promise<void> {
  if (dirname(path) !== ".") await Deno.mkdir(dirname(path), { recursive: true });
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  for (const chunk of generateInc(options)) {
    const bytes = encoder.encode(chunk);
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rows: { type: "string", default: "31434" },
      out: { type: "string", default: "bench/out/inc.csv" },
      tick: { type: "string", default: "0" },
      seed: { type: "string", default: "1" },
    },
  });
  const rows = Number(values.rows);
  const tick = Number(values.tick);
  const seed = Number(values.seed);
  for (const [name, value] of [["--rows", rows], ["--tick", tick], ["--seed", seed]] as const) {
    if (!Number.isInteger(value) || value < 0) {
      console.error(
        `Cannot generate: ${name} must be a non-negative integer, got "${
          values[name.slice(2) as "rows"]
        }"`,
      );
      Deno.exit(1);
    }
  }
  await writeInc(values.out, { rows, tick, seed });
  console.log(`Wrote ${rows} rows (plus the sentinel) to "${values.out}"`);
}
