import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { setupLogging, teardownLogging } from "./log.ts";

Deno.test("setupLogging() writes human lines with the stage, and redacts", async () => {
  const lines: string[] = [];
  await setupLogging({
    format: "human",
    level: "info",
    redact: (text) => text.replaceAll("s3cret", "***"),
    write: (line) => lines.push(line),
  });
  getLogger(["ticketsync", "stages[1] read.json"]).info("Read {n} records with key {key}", {
    n: 3,
    key: "s3cret",
  });
  getLogger(["ticketsync"]).debug("not shown at info");
  await teardownLogging();
  assert.equal(lines.length, 1);
  assert.match(
    lines[0],
    /^\d\d:\d\d:\d\d INFO {4}\[stages\[1\] read\.json\] Read 3 records with key \*\*\*$/,
  );
});

Deno.test("setupLogging() writes one JSON object a line with properties", async () => {
  const lines: string[] = [];
  await setupLogging({
    format: "json",
    level: "debug",
    redact: (t) => t,
    write: (l) => lines.push(l),
  });
  getLogger(["ticketsync", "http"]).warn("Retrying {url}", { url: "http://x/y" });
  await teardownLogging();
  const record = JSON.parse(lines[0]);
  assert.equal(record.level, "warning");
  assert.equal(record.logger, "ticketsync.http");
  assert.equal(record.message, "Retrying http://x/y");
  assert.equal(record.url, "http://x/y");
  assert.match(record.time, /^\d{4}-\d\d-\d\dT/);
});
