/**
 * INC benchmark: a generated hourly snapshot (31,434 rows, 32 columns, 10,132
 * alarm rows and the sentinel; tools/gen_inc.ts) from a local file into
 * PostgreSQL, side by side:
 *
 * (A) `psql`: `\copy` into a temporary staging table, then one
 *     `INSERT ... SELECT ... ON CONFLICT DO UPDATE` doing the same cleaning in
 *     SQL (filter, cases, EAT timestamps, SLA state, raw jsonb), one transaction;
 * (B) a row-by-row loader (this script with `--row-by-row`, postgres.js):
 *     csv-parse, the same cleaning in TypeScript, one `INSERT ... ON CONFLICT`
 *     statement per row, one transaction;
 * (T) ticketsync end to end: `deno run -A main.ts run examples/inc/pipeline.files.json`
 *     (read.files, geocoding off), from process start to exit.
 *
 * Each is timed as a child process from spawn to exit, on a first load and on
 * the reload of the next hour's snapshot (every row changed: statuses and
 * last_seen_at); ticketsync also on an unchanged snapshot (skipped by its
 * SHA-256) and on 10x the rows. Peak RSS comes from `/usr/bin/time -v` (else
 * from polling VmHWM in /proc). Every figure is the median of `--repeat` runs.
 *
 *   deno run -A bench/inc/run.ts [--rows 31434] [--repeat 3] [--no-10x] [--no-write]
 *
 * Writes the table into the INC section of bench/README.md (between its
 * markers, re-reading the file right before) unless --no-write.
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parse } from "csv-parse";
import postgres from "postgres";
import { ROOT } from "../../tests/cli.ts";
import { INC_COLUMNS, writeInc } from "../../tools/gen_inc.ts";

const DATABASE_URL = Deno.env.get("BENCH_DATABASE_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const OUT = join(ROOT, "bench/out/inc");
const CONFIG = join(ROOT, "examples/inc/pipeline.files.json");
const README = join(ROOT, "bench/README.md");
const BEGIN = "<!-- inc:begin (written by bench/inc/run.ts) -->";
const END = "<!-- inc:end -->";
const SCHEMAS = { a: "ts_bench_inc_a", b: "ts_bench_inc_b", t: "ts_bench_inc_t" } as const;

/** The INC pipeline's stages, read once: A and B load what it loads. */
const PIPELINE = JSON.parse(Deno.readTextFileSync(CONFIG)) as {
  stages: {
    use: string;
    drop?: string[];
    raw?: string;
    columns?: Record<string, { type: string; nullable?: boolean }>;
  }[];
};
const SINK = PIPELINE.stages.find((stage) => stage.use === "sync-tickets.postgres")!;

/** The snapshot columns the pipeline drops (its transform.map `drop`), so A and B drop the same. */
const DROPPED: string[] = PIPELINE.stages.find((stage) => stage.use === "transform.map")?.drop ??
  [];
const TIMESTAMPS = [
  "created_at_service",
  "closed_at",
  "created_at",
  "updated_at",
  "first_seen_at",
  "last_seen_at",
];

/** The typed columns of tickets.inc as the pipeline's sink declares them, then its raw column. */
const TABLE_COLUMNS: [string, string][] = [
  ...Object.entries(SINK.columns!).map(([name, column]): [string, string] => [
    name,
    column.nullable === false ? `${column.type} not null` : column.type,
  ]),
  [SINK.raw!, "jsonb"],
];
const NAMES = TABLE_COLUMNS.map(([name]) => name);
const OTHERS = NAMES.filter((name) => name !== "ticket_id");

function createTableSql(schema: string): string {
  return `create schema if not exists "${schema}";
create table if not exists "${schema}".inc (
  ${TABLE_COLUMNS.map(([name, type]) => `"${name}" ${type}`).join(",\n  ")},
  "first_loaded_at" timestamptz not null default now(),
  "updated_at" timestamptz,
  primary key ("ticket_id")
);`;
}

/** `ON CONFLICT` clause shared by A and B: update only rows whose content differs. */
const UPSERT = `on conflict ("ticket_id") do update set
  ${OTHERS.map((c) => `"${c}" = excluded."${c}"`).join(", ")}, "updated_at" = now()
  where row(${OTHERS.map((c) => `t."${c}"`).join(", ")})
    is distinct from row(${OTHERS.map((c) => `excluded."${c}"`).join(", ")})`;

// ---- (A) psql \copy + one INSERT ... ON CONFLICT ----

function psqlScript(schema: string, csv: string): string {
  const ts = (c: string) => `(nullif(s."${c}", '')::timestamp at time zone 'Africa/Nairobi')`;
  const text = (c: string) => `nullif(s."${c}", '')`;
  return `\\set ON_ERROR_STOP 1
begin;
${createTableSql(schema)}
create temp table staging (${INC_COLUMNS.map((c) => `"${c}" text`).join(", ")}) on commit drop;
\\copy staging from '${csv.replaceAll("'", "''")}' with (format csv, header true)
insert into "${schema}".inc as t (${NAMES.map((c) => `"${c}"`).join(", ")}, "updated_at")
select s.ticket_id, ${text("is_actionable")}::boolean, lower(${text("region")}),
  upper(${text("raw_status")}), ${text("status")}, ${text("bucket")}, ${text("sla_status")},
  ${text("mttr")}::numeric,
  case when upper(s.raw_status) = 'CLOSED' then ${text("sla_status")}
    when coalesce(x.cas, x.fs) is null then null
    when now() - coalesce(x.cas, x.fs) >= interval '48 hours' then 'breached'
    when now() - coalesce(x.cas, x.fs) >= interval '36 hours' then 'at_risk'
    else 'within' end,
  case when upper(s.raw_status) = 'CLOSED' then 'sla_status'
    when x.cas is not null then 'created_at_service'
    when x.fs is not null then 'first_seen_at' end,
  x.cas, ${ts("closed_at")}, ${ts("created_at")}, ${ts("updated_at")}, x.fs, ${ts("last_seen_at")},
  ${text("assigned_team")}, ${text("owner")}, ${text("town")}, ${text("location")},
  ${text("cluster")}, ${text("priority")}, ${text("latitude")}::double precision,
  ${text("longitude")}::double precision, null, null,
  to_jsonb(s) - array[${DROPPED.map((c) => `'${c}'`).join(", ")}],
  now()
from staging s
cross join lateral (select ${ts("created_at_service")} as cas, ${ts("first_seen_at")} as fs) x
where s.is_alarm is distinct from 'true' and s.ticket_id not like 'EXPORT STOPPED%'
${UPSERT};
commit;
`;
}

// ---- (B) one INSERT per row ----

/** `yyyy-MM-dd HH:mm:ss` in EAT (UTC+3, no DST) to an ISO instant, or null. */
function eatInstant(value: string): string | null {
  if (value === "") return null;
  const ms = Date.parse(`${value.replace(" ", "T")}+03:00`);
  if (Number.isNaN(ms)) throw new Error(`Bad EAT time "${value}"`);
  return new Date(ms).toISOString();
}

const HOUR = 3_600_000;

/** The row-by-row loader: what a hand-written script does. */
async function rowByRow(csv: string, schema: string): Promise<number> {
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  const placeholders = NAMES.map((_name, i) => {
    const type = TABLE_COLUMNS[i][1].replace(" not null", "");
    return type === "text" ? `$${i + 1}` : `$${i + 1}::${type}`;
  });
  const insert = `insert into "${schema}".inc as t (${NAMES.map((c) => `"${c}"`).join(", ")},
  "updated_at") values (${placeholders.join(", ")}, now())
${UPSERT}`;
  let loaded = 0;
  try {
    await sql.unsafe(createTableSql(schema));
    await sql.begin(async function load(tx) {
      const now = Date.now();
      const parser = Deno.openSync(csv).readable.pipeThrough(
        new TextDecoderStream(),
      );
      const records = parse({ columns: true });
      const feeding = (async () => {
        for await (const chunk of parser) {
          if (!records.write(chunk)) await new Promise((ok) => records.once("drain", ok));
        }
        records.end();
      })();
      for await (const record of records as AsyncIterable<Record<string, string>>) {
        if (record.is_alarm === "true" || record.ticket_id.startsWith("EXPORT STOPPED")) continue;
        const row: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(record)) {
          if (!DROPPED.includes(key)) row[key] = value === "" ? null : value;
        }
        row.region = record.region === "" ? null : record.region.toLowerCase();
        row.raw_status = record.raw_status === "" ? null : record.raw_status.toUpperCase();
        for (const column of TIMESTAMPS) row[column] = eatInstant(record[column]);
        const start = (row.created_at_service ?? row.first_seen_at) as string | null;
        const closed = row.raw_status === "CLOSED";
        const age = start === null ? 0 : now - Date.parse(start);
        row.sla_state = closed
          ? row.sla_status
          : start === null
          ? null
          : age >= 48 * HOUR
          ? "breached"
          : age >= 36 * HOUR
          ? "at_risk"
          : "within";
        row.sla_basis = closed
          ? "sla_status"
          : row.created_at_service
          ? "created_at_service"
          : row.first_seen_at
          ? "first_seen_at"
          : null;
        const values = NAMES.map((name) =>
          name === "raw"
            ? JSON.stringify(row)
            : name === "source_updated_at"
            ? row.updated_at
            : row[name] ?? null
        );
        await tx.unsafe(insert, values as string[]);
        loaded++;
      }
      await feeding;
    });
  } finally {
    await sql.end();
  }
  return loaded;
}

// ---- measuring ----

/** One timed child process. */
interface Timed {
  ms: number;
  /** Peak resident set size in MB, when measured. */
  rssMb?: number;
  code: number;
  stderr: string;
  stdout: string;
}

let timeBinary: string | null | undefined;

async function findTime(): Promise<string | null> {
  if (timeBinary !== undefined) return timeBinary;
  try {
    const probe = await new Deno.Command("/usr/bin/time", {
      args: ["-v", "true"],
      stdout: "null",
      stderr: "piped",
    }).output();
    timeBinary = new TextDecoder().decode(probe.stderr).includes("Maximum resident")
      ? "/usr/bin/time"
      : null;
  } catch {
    timeBinary = null;
  }
  return timeBinary;
}

/** Runs a command to exit, timing it; `rss` measures the peak RSS too. */
async function timed(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; rss?: boolean } = {},
): Promise<Timed> {
  const time = options.rss ? await findTime() : null;
  const [cmd, argv] = time ? [time, ["-v", command, ...args]] : [command, args];
  const started = performance.now();
  const child = new Deno.Command(cmd, {
    args: argv,
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let hwm = 0;
  let polling: ReturnType<typeof setInterval> | undefined;
  if (options.rss && !time) {
    polling = setInterval(() => {
      try {
        const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
        const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        hwm = Math.max(hwm, kb);
      } catch {
        // The process has exited.
      }
    }, 20);
  }
  const output = await child.output();
  const ms = performance.now() - started;
  if (polling !== undefined) clearInterval(polling);
  const stderr = new TextDecoder().decode(output.stderr);
  const stdout = new TextDecoder().decode(output.stdout);
  const maxKb = time
    ? Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1])
    : hwm;
  return {
    ms,
    rssMb: options.rss ? maxKb / 1024 : undefined,
    code: output.code,
    stderr,
    stdout,
  };
}

function check(label: string, run: Timed, pattern?: RegExp): Timed {
  if (run.code !== 0 || (pattern && !pattern.test(run.stderr + run.stdout))) {
    throw new Error(
      `${label} failed (exit ${run.code}${pattern ? `, expected ${pattern}` : ""}):\n${
        run.stderr.slice(-3000)
      }${run.stdout.slice(-1000)}`,
    );
  }
  return run;
}

async function admin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

function resetSchema(schema: string): Promise<void> {
  return admin(async (sql) => {
    await sql.unsafe(`drop schema if exists "${schema}" cascade`);
  });
}

function countRows(schema: string): Promise<number> {
  return admin(async (sql) => {
    const [row] = await sql.unsafe(`select count(*)::int as n from "${schema}".inc`);
    return row.n as number;
  });
}

function psql(schema: string, csv: string, script: string): Promise<Timed> {
  Deno.writeTextFileSync(script, psqlScript(schema, csv));
  return timed("psql", ["-X", "-q", "-d", DATABASE_URL, "-f", script]);
}

function loaderB(schema: string, csv: string): Promise<Timed> {
  return timed(Deno.execPath(), [
    "run",
    "-A",
    join(ROOT, "bench/inc/run.ts"),
    "--row-by-row",
    csv,
    "--schema",
    schema,
  ]);
}

/** A ticketsync working directory with a fresh state and an empty automations/inc/. */
async function ticketsyncDir(name: string): Promise<string> {
  const dir = join(OUT, name);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(join(dir, "bucket/automations/inc"), { recursive: true });
  return dir;
}

/** V8 flags of the tuned run: a smaller young generation (see bench/README.md). */
const TUNED_V8_FLAGS = "--max-semi-space-size=4";

async function ticketsync(
  dir: string,
  snapshot: string,
  csv: string,
  env: Record<string, string> = {},
): Promise<Timed> {
  await Deno.copyFile(csv, join(dir, "bucket/automations/inc", snapshot));
  return timed(Deno.execPath(), [
    "run",
    "-A",
    join(ROOT, "main.ts"),
    "run",
    CONFIG,
    "--schema",
    SCHEMAS.t,
    "--dir",
    "bucket",
    "--no-progress",
  ], { cwd: dir, env: { DATABASE_URL, ...env }, rss: true });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

// ---- main ----

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rows: { type: "string", default: "31434" },
      repeat: { type: "string", default: "3" },
      "no-10x": { type: "boolean", default: false },
      "no-write": { type: "boolean", default: false },
      "row-by-row": { type: "string" },
      schema: { type: "string" },
    },
  });
  if (values["row-by-row"]) {
    const loaded = await rowByRow(values["row-by-row"], values.schema ?? SCHEMAS.b);
    console.log(`loaded ${loaded}`);
    return;
  }
  const rows = Number(values.rows);
  const repeat = Number(values.repeat);
  await Deno.mkdir(OUT, { recursive: true });
  const base = join(OUT, "inc_base.csv");
  const next = join(OUT, "inc_next.csv");
  const big = join(OUT, "inc_10x.csv");
  console.error(`Generating ${rows} rows (and the next hour) in ${OUT} ...`);
  await writeInc(base, { rows, tick: 0, seed: 1 });
  await writeInc(next, { rows, tick: 1, seed: 1 });
  const withBig = !values["no-10x"];
  if (withBig) await writeInc(big, { rows: rows * 10, tick: 0, seed: 1 });
  const script = join(OUT, "a.sql");

  const a = { first: [] as number[], reload: [] as number[] };
  const b = { first: [] as number[], reload: [] as number[] };
  const t = {
    first: [] as number[],
    reload: [] as number[],
    unchanged: [] as number[],
    rss: [] as number[],
    tunedFirst: [] as number[],
    tunedRss: [] as number[],
  };
  let loadedRows = 0;
  for (let round = 1; round <= repeat; round++) {
    console.error(`Round ${round}/${repeat}: A (psql) ...`);
    await resetSchema(SCHEMAS.a);
    a.first.push(check("A first", await psql(SCHEMAS.a, base, script)).ms);
    a.reload.push(check("A reload", await psql(SCHEMAS.a, next, script)).ms);
    loadedRows = await countRows(SCHEMAS.a);

    console.error(`Round ${round}/${repeat}: B (row by row) ...`);
    await resetSchema(SCHEMAS.b);
    b.first.push(check("B first", await loaderB(SCHEMAS.b, base), /loaded \d+/).ms);
    b.reload.push(check("B reload", await loaderB(SCHEMAS.b, next), /loaded \d+/).ms);
    if (await countRows(SCHEMAS.b) !== loadedRows) throw new Error("B loaded a different count");

    console.error(`Round ${round}/${repeat}: ticketsync ...`);
    await resetSchema(SCHEMAS.t);
    const dir = await ticketsyncDir("ticketsync");
    const first = check(
      "ticketsync first load",
      await ticketsync(dir, "2026-06-15T17-00-00.csv", base),
      new RegExp(`${loadedRows} created, 0 updated`),
    );
    const reload = check(
      "ticketsync reload",
      await ticketsync(dir, "2026-06-15T18-00-00.csv", next),
      / updated, /,
    );
    const unchanged = check(
      "ticketsync unchanged",
      await ticketsync(dir, "2026-06-15T19-00-00.csv", next),
      /unchanged since the last load/,
    );
    t.first.push(first.ms);
    t.reload.push(reload.ms);
    t.unchanged.push(unchanged.ms);
    t.rss.push(first.rssMb!, reload.rssMb!, unchanged.rssMb!);
    if (await countRows(SCHEMAS.t) !== loadedRows) {
      throw new Error("ticketsync loaded a different count");
    }

    console.error(`Round ${round}/${repeat}: ticketsync, DENO_V8_FLAGS=${TUNED_V8_FLAGS} ...`);
    await resetSchema(SCHEMAS.t);
    const tuned = check(
      "ticketsync tuned first load",
      await ticketsync(await ticketsyncDir("ticketsync-tuned"), "2026-06-15T17-00-00.csv", base, {
        DENO_V8_FLAGS: TUNED_V8_FLAGS,
      }),
      new RegExp(`${loadedRows} created, 0 updated`),
    );
    t.tunedFirst.push(tuned.ms);
    t.tunedRss.push(tuned.rssMb!);
  }

  const big10 = {
    t: [] as number[],
    a: [] as number[],
    rss: [] as number[],
    tunedRss: [] as number[],
  };
  if (withBig) {
    for (let round = 1; round <= repeat; round++) {
      console.error(`Round ${round}/${repeat}: 10x rows ...`);
      await resetSchema(SCHEMAS.a);
      big10.a.push(check("A 10x", await psql(SCHEMAS.a, big, script)).ms);
      await resetSchema(SCHEMAS.t);
      const dir = await ticketsyncDir("ticketsync-10x");
      const run = check(
        "ticketsync 10x",
        await ticketsync(dir, "2026-06-15T17-00-00.csv", big),
        / created, 0 updated/,
      );
      big10.t.push(run.ms);
      big10.rss.push(run.rssMb!);
      if (round === 1) {
        await resetSchema(SCHEMAS.t);
        const tuned = check(
          "ticketsync tuned 10x",
          await ticketsync(await ticketsyncDir("ticketsync-10x"), "2026-06-15T17-00-00.csv", big, {
            DENO_V8_FLAGS: TUNED_V8_FLAGS,
          }),
          / created, 0 updated/,
        );
        big10.tunedRss.push(tuned.rssMb!);
      }
    }
  }
  for (const schema of Object.values(SCHEMAS)) await resetSchema(schema);

  const m = {
    aFirst: median(a.first),
    aReload: median(a.reload),
    bFirst: median(b.first),
    bReload: median(b.reload),
    tFirst: median(t.first),
    tReload: median(t.reload),
    tUnchanged: median(t.unchanged),
    rss: Math.max(...t.rss),
    tunedFirst: median(t.tunedFirst),
    tunedRss: Math.max(...t.tunedRss),
    tunedRss10: withBig ? Math.max(...big10.tunedRss) : NaN,
    t10: withBig ? median(big10.t) : NaN,
    a10: withBig ? median(big10.a) : NaN,
    rss10: withBig ? Math.max(...big10.rss) : NaN,
  };
  const goal = (ok: boolean) => ok ? "met" : "**missed**";
  const lines = [
    `${rows.toLocaleString("en")} rows (${
      loadedRows.toLocaleString("en")
    } loaded after dropping alarms and the sentinel), 32 columns, ${
      (Deno.statSync(base).size / 1e6).toFixed(1)
    } MB; median of ${repeat} runs; ${navigator.hardwareConcurrency} cores; ${
      new Date().toISOString().slice(0, 10)
    }.`,
    "",
    "| run | A: psql \\copy + upsert | B: row by row | ticketsync | ticketsync / A | B / ticketsync |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    `| first load | ${seconds(m.aFirst)} | ${seconds(m.bFirst)} | ${seconds(m.tFirst)} | ${
      (m.tFirst / m.aFirst).toFixed(2)
    }x | ${(m.bFirst / m.tFirst).toFixed(2)}x |`,
    `| reload (next hour, every row changed) | ${seconds(m.aReload)} | ${seconds(m.bReload)} | ${
      seconds(m.tReload)
    } | ${(m.tReload / m.aReload).toFixed(2)}x | ${(m.bReload / m.tReload).toFixed(2)}x |`,
    `| unchanged snapshot (skipped by SHA-256) | | | ${seconds(m.tUnchanged)} | | |`,
    `| first load, \`DENO_V8_FLAGS=${TUNED_V8_FLAGS}\` | | | ${seconds(m.tunedFirst)} | ${
      (m.tunedFirst / m.aFirst).toFixed(2)
    }x | ${(m.bFirst / m.tunedFirst).toFixed(2)}x |`,
    ...(withBig
      ? [
        `| 10x rows (${(rows * 10).toLocaleString("en")}), first load | ${seconds(m.a10)} | | ${
          seconds(m.t10)
        } | ${(m.t10 / m.a10).toFixed(2)}x | |`,
      ]
      : []),
    "",
    "| goal | target | measured | |",
    "| --- | --- | --- | --- |",
    `| first load vs A | <= 1.25x | ${(m.tFirst / m.aFirst).toFixed(2)}x | ${
      goal(m.tFirst <= 1.25 * m.aFirst)
    } |`,
    `| reload vs A | <= 1.25x | ${(m.tReload / m.aReload).toFixed(2)}x | ${
      goal(m.tReload <= 1.25 * m.aReload)
    } |`,
    `| faster than B (first load / reload) | >= 4x | ${(m.bFirst / m.tFirst).toFixed(2)}x / ${
      (m.bReload / m.tReload).toFixed(2)
    }x | ${goal(m.bFirst >= 4 * m.tFirst && m.bReload >= 4 * m.tReload)} |`,
    `| unchanged skip vs first load | <= 0.10x | ${(m.tUnchanged / m.tFirst).toFixed(2)}x | ${
      goal(m.tUnchanged <= 0.1 * m.tFirst)
    } |`,
    `| peak RSS | < 200 MB | ${m.rss.toFixed(0)} MB${
      withBig ? ` (10x rows: ${m.rss10.toFixed(0)} MB)` : ""
    } | ${goal(m.rss < 200)} |`,
    `| peak RSS, \`DENO_V8_FLAGS=${TUNED_V8_FLAGS}\` | < 200 MB | ${m.tunedRss.toFixed(0)} MB${
      withBig ? ` (10x rows: ${m.tunedRss10.toFixed(0)} MB)` : ""
    } | ${goal(m.tunedRss < 200)} |`,
    ...(withBig
      ? [
        `| 10x rows vs first load | <= 11x | ${(m.t10 / m.tFirst).toFixed(2)}x | ${
          goal(m.t10 <= 11 * m.tFirst)
        } |`,
      ]
      : []),
  ];
  const table = lines.join("\n");
  console.log(table);
  await Deno.writeTextFile(
    join(OUT, "results.json"),
    JSON.stringify({ rows, loadedRows, repeat, a, b, t, big10, medians: m }, null, 2),
  );
  if (!values["no-write"]) await writeReadme(table);
}

/** Replaces the text between the INC markers of bench/README.md, re-reading it first. */
async function writeReadme(table: string): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(README);
  } catch {
    text = "";
  }
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const block = `${BEGIN}\n${table}\n${END}`;
  const updated = start !== -1 && end > start
    ? text.slice(0, start) + block + text.slice(end + END.length)
    : `${text.trimEnd()}\n\n## INC\n\n${block}\n`;
  await Deno.writeTextFile(README, updated);
  console.error(`Wrote the INC figures into ${README}`);
}

if (import.meta.main) await main();
