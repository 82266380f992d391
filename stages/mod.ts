/**
 * The registry: the one list of every stage. Adding a stage is one new file
 * plus one line here; the engine never names a stage. A test checks that every
 * stage file under `stages/` is listed.
 *
 * A stage is loaded when a config uses it: a run pays start-up only for its
 * own stages (loading all 21 and their schemas costs about 50 ms).
 * @module
 */
import type { StageLoader } from "../lib/registry.ts";
import type { StageDefinition } from "../lib/stage.ts";

/**
 * The loader of a stage module's `stage` export. Each `import()` stays
 * written out below, so `deno compile` and `deno bundle` see every module.
 */
function stage(load: () => Promise<{ stage: StageDefinition }>): StageLoader {
  return () => load().then((module) => module.stage);
}

/** Every stage ticketsync ships, by its `use` reference. */
export const stageLoaders: Readonly<Record<string, StageLoader>> = {
  "read.json": stage(() => import("./read/json.ts")),
  "read.csv": stage(() => import("./read/csv.ts")),
  "read.files": stage(() => import("./read/files.ts")),
  "read.s3": stage(() => import("./read/s3.ts")),
  "read.postgres": stage(() => import("./read/postgres.ts")),
  "read.http": stage(() => import("./read/http.ts")),
  "filter.match": stage(() => import("./filter/match.ts")),
  "transform.map": stage(() => import("./transform/map.ts")),
  "transform.validate": stage(() => import("./transform/validate.ts")),
  "transform.sla": stage(() => import("./transform/sla.ts")),
  "transform.geocode": stage(() => import("./transform/geocode.ts")),
  "transform.envelope": stage(() => import("./transform/envelope.ts")),
  "sync-tickets.sqlite": stage(() => import("./sync_tickets/sqlite.ts")),
  "sync-tickets.postgres": stage(() => import("./sync_tickets/postgres.ts")),
  "sync-tickets.json_export": stage(() => import("./sync_tickets/json_export.ts")),
  "sync-responses.sqlite": stage(() => import("./sync_responses/sqlite.ts")),
  "sync-tickets.http": stage(() => import("./sync_tickets/http.ts")),
  "sync-responses.http": stage(() => import("./sync_responses/http.ts")),
  "sync-tickets.webhook": stage(() => import("./sync_tickets/webhook.ts")),
  "report.summary": stage(() => import("./report/summary.ts")),
  "report.json": stage(() => import("./report/json.ts")),
};
