/**
 * Foundation benchmark (issue #2): N JSON Lines records through read.json,
 * filter.match, transform.map and sync-tickets.sqlite, run as the real CLI
 * (process start to exit) under `/usr/bin/time -v` for peak RSS.
 *
 *   deno run -A bench/foundation/run.ts [--sizes 100000,1000000] [--runs 1]
 *
 * Prints a Markdown table; bench/README.md holds the figures. Not a test.
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const { values } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "100000,1000000" },
    runs: { type: "string", default: "1" },
  },
});
const sizes = values.sizes!.split(",").map(Number);
const runs = Number(values.runs);
const work = join(ROOT, "bench/out/foundation");
await Deno.mkdir(work, { recursive: true });

const STATUSES = ["Open", "Closed", "Expired", "Cancelled"];
const CITIES = ["Austin", "Plano", "Frisco", "Dallas", "Houston", "Waco", "Tyler", "Irving"];

/** Deterministic records, streamed to disk (never held whole). */
async function generate(path: string, count: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let chunk: string[] = [];
  for (let i = 0; i < count; i++) {
    const day = (i % 28) + 1;
    const hour = (i % 12) + 1;
    chunk.push(JSON.stringify({
      ticketNumber: String(2500000000 + i),
      ticketType: i % 7 === 0 ? "Emergency" : "Normal",
      status: STATUSES[i % 4],
      createdDate: `03/${String(day).padStart(2, "0")}/2025 ${String(hour).padStart(2, "0")}:15 ${
        i % 2 ? "PM" : "AM"
      }`,
      excavator: {
        company: `Company ${i % 500}  `,
        phone: `214-555-${String(i % 10000).padStart(4, "0")}`,
      },
      workSite: {
        city: CITIES[i % CITIES.length],
        latitude: String(30 + (i % 1000) / 1000),
        address: `${i} Main St`,
      },
      remarks: i % 3 === 0 ? "" : "Gate code 1234#",
    }));
    if (chunk.length === 5000) {
      await file.write(encoder.encode(chunk.join("\n") + "\n"));
      chunk = [];
    }
  }
  if (chunk.length) await file.write(encoder.encode(chunk.join("\n") + "\n"));
  file.close();
}

function config(input: string, db: string, state: string): unknown {
  return {
    name: "bench-foundation",
    key: "ticket_number",
    noun: "tickets",
    progressEvery: 100000,
    state: { path: state },
    stages: [
      { use: "read.json", path: input, format: "lines" },
      {
        use: "filter.match",
        rules: [{ name: "cancelled", drop: { field: "status", eq: "Cancelled" } }],
      },
      {
        use: "transform.map",
        fields: {
          ticket_number: { from: "ticketNumber", required: true },
          ticket_type: "ticketType",
          status: { from: "status", case: "lower" },
          created_at: {
            from: "createdDate",
            type: "date",
            format: "MM/dd/yyyy hh:mm a",
            zone: "America/Chicago",
            output: "iso-offset",
          },
          company: { from: "excavator.company", trim: true },
          phone: "excavator.phone",
          city: "workSite.city",
          latitude: { from: "workSite.latitude", type: "number" },
          remarks: { from: "remarks", emptyAsNull: true },
        },
      },
      {
        use: "sync-tickets.sqlite",
        path: db,
        table: "tickets",
        batchSize: 1000,
        columns: {
          ticket_number: { type: "text" },
          status: { type: "text" },
          created_at: { type: "text" },
          city: { type: "text" },
          latitude: { type: "real" },
        },
      },
    ],
  };
}

interface Measure {
  seconds: number;
  peakMb: number;
  code: number;
  summary: string;
}

async function runOnce(configPath: string): Promise<Measure> {
  const output = await new Deno.Command("/usr/bin/time", {
    args: [
      "-v",
      Deno.execPath(),
      "run",
      // The V8 flag `deno task compile` bakes into the binary: a smaller young generation.
      "--v8-flags=--max-semi-space-size=4",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net",
      "--allow-sys",
      join(ROOT, "main.ts"),
      "run",
      configPath,
      "--no-progress",
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(
    stderr,
  )!;
  const seconds = Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]);
  const peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)![1]);
  const summary = /finished in .*$/m.exec(stderr)?.[0] ?? "";
  return { seconds, peakMb: peakKb / 1024, code: output.code, summary };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rows: string[] = [];
const firstRuns: { n: number; seconds: number }[] = [];
for (const n of sizes) {
  const input = join(work, `records-${n}.jsonl`);
  try {
    await Deno.stat(input);
  } catch {
    console.error(`Generating ${n} records...`);
    await generate(input, n);
  }
  const first: Measure[] = [];
  const second: Measure[] = [];
  for (let r = 0; r < runs; r++) {
    const db = join(work, `out-${n}.db`);
    const state = join(work, `state-${n}.db`);
    for (const path of [db, state, `${db}-wal`, `${db}-shm`, `${state}-wal`, `${state}-shm`]) {
      await Deno.remove(path).catch(() => {});
    }
    const configPath = join(work, `pipeline-${n}.json`);
    await Deno.writeTextFile(configPath, JSON.stringify(config(input, db, state)));
    first.push(await runOnce(configPath));
    second.push(await runOnce(configPath));
    console.error(
      `n=${n}: first ${first.at(-1)!.summary}\n        second ${second.at(-1)!.summary}`,
    );
  }
  const f = median(first.map((m) => m.seconds));
  const s = median(second.map((m) => m.seconds));
  firstRuns.push({ n, seconds: f });
  rows.push(
    `| ${n.toLocaleString("en")} | ${f.toFixed(1)} s | ${
      Math.round(n / f).toLocaleString("en")
    } | ${median(first.map((m) => m.peakMb)).toFixed(0)} MB | ${s.toFixed(1)} s | ${
      Math.round(n / s).toLocaleString("en")
    } | ${median(second.map((m) => m.peakMb)).toFixed(0)} MB | ${
      first.every((m) => m.code === 0) && second.every((m) => m.code === 0) ? "0" : "error"
    } |`,
  );
}

console.log(
  "| records | first run | records/s | peak RSS | re-run (all unchanged) | records/s | peak RSS | exit |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const row of rows) console.log(row);
if (firstRuns.length > 1) {
  const a = firstRuns[0];
  const b = firstRuns.at(-1)!;
  console.log(
    `\nFrom ${a.n.toLocaleString("en")} to ${b.n.toLocaleString("en")} records (x${
      b.n / a.n
    }): time x${(b.seconds / a.seconds).toFixed(2)}`,
  );
}
