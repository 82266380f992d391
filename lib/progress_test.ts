import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { formatDuration, Progress } from "./progress.ts";
import { setupLogging, teardownLogging } from "./log.ts";

Deno.test("Progress logs every N records with percentage and ETA", async () => {
  const lines: string[] = [];
  await setupLogging({
    format: "human",
    level: "info",
    redact: (t) => t,
    write: (l) => lines.push(l),
  });
  let now = 0;
  const progress = new Progress({
    verb: "Imported",
    noun: "tickets",
    every: 1000,
    log: getLogger(["ticketsync", "progress"]),
    bar: false,
    now: () => now,
  });
  progress.setTotal(5000);
  for (let i = 0; i < 2500; i++) {
    now += 2; // 500 records per second
    progress.tick();
  }
  await teardownLogging();
  assert.equal(lines.length, 2);
  assert.match(lines[0], /Imported 1000\/5000 tickets \(20%\), 500\/s, ETA 8s$/);
  assert.match(lines[1], /Imported 2000\/5000 tickets \(40%\), 500\/s, ETA 6s$/);
});

Deno.test("Progress without a total says the count and rate", () => {
  let now = 0;
  const progress = new Progress({
    verb: "Imported",
    noun: "records",
    every: 10,
    log: getLogger(["ticketsync", "quiet"]),
    bar: false,
    now: () => now,
  });
  now = 1000;
  progress.tick(5);
  assert.equal(progress.line(), "Imported 5 records, 5.0/s");
});

Deno.test("Progress bar draws in place on a terminal", () => {
  const written: string[] = [];
  let now = 0;
  const progress = new Progress({
    verb: "Imported",
    noun: "tickets",
    every: 1_000_000,
    log: getLogger(["ticketsync", "quiet"]),
    bar: true,
    now: () => now,
    write: (text) => written.push(text),
  });
  progress.setTotal(10);
  now = 1000;
  progress.tick(5);
  progress.finish();
  assert.ok(
    written.some((text) => text.includes("[###############               ] Imported 5/10")),
  );
  assert.equal(written.at(-1), "\r\x1b[2K");
});

Deno.test("formatDuration() picks units", () => {
  assert.equal(formatDuration(42_000), "42s");
  assert.equal(formatDuration(65_000), "1m05s");
  assert.equal(formatDuration(3_720_000), "1h02m");
});

Deno.test("Progress marks an estimated total", () => {
  let now = 0;
  const progress = new Progress({
    verb: "Imported",
    noun: "tickets",
    every: 1_000_000,
    log: getLogger(["ticketsync", "quiet"]),
    bar: false,
    now: () => now,
  });
  progress.setTotal(400, true);
  now = 1000;
  progress.tick(100);
  assert.equal(progress.line(), "Imported 100/~400 tickets (25%), 100/s, ETA 3s");
});
