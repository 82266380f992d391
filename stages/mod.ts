/**
 * The registry: the one list of every stage. Adding a stage is one new file
 * plus one line here; the engine never names a stage. A test checks that every
 * stage file under `stages/` is listed.
 *
 * A stage is loaded when a config uses it: a run pays start-up only for its
 * own stages (loading all 21 and their schemas costs about 50 ms).
 * @module
 */
import type { StageDefinition } from "../lib/stage.ts";

/** Loads one stage's definition. */
export type StageLoader = () => Promise<StageDefinition>;

/** Every stage ticketsync ships, by its `use` reference. */
export const stageLoaders: Readonly<Record<string, StageLoader>> = {
  "read.json": () => import("./read/json.ts").then((module) => module.stage),
  "read.csv": () => import("./read/csv.ts").then((module) => module.stage),
  "read.files": () => import("./read/files.ts").then((module) => module.stage),
  "read.s3": () => import("./read/s3.ts").then((module) => module.stage),
  "read.postgres": () => import("./read/postgres.ts").then((module) => module.stage),
  "read.http": () => import("./read/http.ts").then((module) => module.stage),
  "filter.match": () => import("./filter/match.ts").then((module) => module.stage),
  "transform.map": () => import("./transform/map.ts").then((module) => module.stage),
  "transform.validate": () => import("./transform/validate.ts").then((module) => module.stage),
  "transform.sla": () => import("./transform/sla.ts").then((module) => module.stage),
  "transform.geocode": () => import("./transform/geocode.ts").then((module) => module.stage),
  "transform.envelope": () => import("./transform/envelope.ts").then((module) => module.stage),
  "sync-tickets.sqlite": () => import("./sync_tickets/sqlite.ts").then((module) => module.stage),
  "sync-tickets.postgres": () =>
    import("./sync_tickets/postgres.ts").then((module) => module.stage),
  "sync-tickets.json_export": () =>
    import("./sync_tickets/json_export.ts").then((module) => module.stage),
  "sync-responses.sqlite": () =>
    import("./sync_responses/sqlite.ts").then((module) => module.stage),
  "sync-tickets.http": () => import("./sync_tickets/http.ts").then((module) => module.stage),
  "sync-responses.http": () => import("./sync_responses/http.ts").then((module) => module.stage),
  "sync-tickets.webhook": () => import("./sync_tickets/webhook.ts").then((module) => module.stage),
  "report.summary": () => import("./report/summary.ts").then((module) => module.stage),
  "report.json": () => import("./report/json.ts").then((module) => module.stage),
};

/** Every stage definition (for docs, the JSON Schema and tests). */
export function loadStages(): Promise<StageDefinition[]> {
  return Promise.all(Object.values(stageLoaders).map((load) => load()));
}
