import assert from "node:assert/strict";
import {
  folderPrefix,
  parseSnapshotName,
  pickNewest,
  snapshotConfigSchema,
  sortOldestFirst,
} from "./snapshot.ts";

const EAT = "Africa/Nairobi";

Deno.test("parseSnapshotName() reads the name as wall time in the zone", () => {
  assert.equal(
    parseSnapshotName("2026-06-15T17-00-00.csv", EAT)?.toString(),
    "2026-06-15T14:00:00Z",
  );
  assert.equal(
    parseSnapshotName("2026-06-15T17-00-00.csv", "UTC")?.toString(),
    "2026-06-15T17:00:00Z",
  );
  assert.equal(
    parseSnapshotName("2026-01-01T00-30-15.csv", EAT)?.toString(),
    "2025-12-31T21:30:15Z",
  );
});

Deno.test("parseSnapshotName() rejects other names and impossible dates", () => {
  for (
    const name of [
      "latest.json",
      "2026-06-15T17-00-00.json",
      "2026-06-15T17:00:00.csv",
      "2026-06-15 17-00-00.csv",
      "x2026-06-15T17-00-00.csv",
      "2026-06-15T17-00-00.csv.bak",
      "2026-13-01T00-00-00.csv",
      "2026-02-30T00-00-00.csv",
      "2026-06-15T24-00-00.csv",
    ]
  ) {
    assert.equal(parseSnapshotName(name, EAT), null, name);
  }
});

Deno.test("pickNewest() goes by the time in the name and ignores other names", () => {
  const names = [
    "2026-06-15T18-00-00.csv",
    "zz-latest.csv",
    "2026-06-15T09-00-00.csv",
    "2026-06-16T07-15-00.csv",
    "2026-06-15T23-59-59.csv",
  ];
  assert.equal(pickNewest(names, EAT), "2026-06-16T07-15-00.csv");
  assert.equal(pickNewest(["latest.json", "notes.txt"], EAT), null);
  assert.equal(pickNewest([], EAT), null);
});

Deno.test("sortOldestFirst() orders snapshots by time and drops non-snapshots", () => {
  assert.deepEqual(
    sortOldestFirst([
      "2026-06-15T18-00-00.csv",
      "README.md",
      "2026-06-14T18-00-00.csv",
      "2026-06-15T17-00-00.csv",
    ], EAT),
    ["2026-06-14T18-00-00.csv", "2026-06-15T17-00-00.csv", "2026-06-15T18-00-00.csv"],
  );
});

Deno.test("snapshotConfigSchema has the documented defaults and rejects unknown keys", () => {
  const config = snapshotConfigSchema.parse({});
  assert.equal(config.prefix, "automations/inc/");
  assert.equal(config.zone, "Africa/Nairobi");
  assert.equal(config.select, "newest");
  assert.equal(config.processedPrefix, "processed/");
  assert.equal(config.skipUnchanged, true);
  assert.equal(config.moveOnSuccess, true);
  assert.equal(config.cursor, "snapshot");
  assert.equal(config.format, "csv");
  assert.equal(config.delimiter, ",");
  assert.equal(snapshotConfigSchema.safeParse({ zone: "Mars/Base" }).success, false);
  assert.equal(snapshotConfigSchema.safeParse({ select: "oldest" }).success, false);
  assert.equal(snapshotConfigSchema.safeParse({ bucket: "x" }).success, false);
  const headerless = snapshotConfigSchema.safeParse({ header: false });
  assert.deepEqual(headerless.error?.issues.map((issue) => [issue.path, issue.message]), [
    [["columns"], 'required when "header" is false: expected the column names in file order'],
  ]);
});

Deno.test("folderPrefix() adds the trailing slash a key prefix needs", () => {
  assert.equal(folderPrefix(""), "");
  assert.equal(folderPrefix("automations/inc"), "automations/inc/");
  assert.equal(folderPrefix("automations/inc/"), "automations/inc/");
});

Deno.test("snapshotConfigSchema needs moveOnSuccess for an incremental feed", () => {
  const feed = snapshotConfigSchema.safeParse({ select: "all-oldest-first", moveOnSuccess: false });
  assert.deepEqual(feed.error?.issues.map((issue) => issue.path), [["moveOnSuccess"]]);
  assert.equal(
    snapshotConfigSchema.safeParse({ select: "newest", moveOnSuccess: false }).success,
    true,
  );
});

Deno.test("snapshotConfigSchema refuses a processedPrefix that is the listed folder itself", () => {
  for (const processedPrefix of ["./", ".", "/", "../done/", "a/../.."]) {
    const parsed = snapshotConfigSchema.safeParse({ processedPrefix });
    assert.deepEqual(
      parsed.error?.issues.map((issue) => issue.path),
      [["processedPrefix"]],
      processedPrefix,
    );
  }
  assert.equal(snapshotConfigSchema.safeParse({ processedPrefix: "./done/" }).success, true);
});
