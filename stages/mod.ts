/**
 * The registry: the one list of every stage. Adding a stage is one new file
 * plus one line here; the engine never names a stage. A test checks that every
 * stage file under `stages/` is listed.
 * @module
 */
import type { StageDefinition } from "../lib/stage.ts";
import { stage as readJson } from "./read/json.ts";
import { stage as readCsv } from "./read/csv.ts";
import { stage as readFiles } from "./read/files.ts";
import { stage as readS3 } from "./read/s3.ts";
import { stage as readPostgres } from "./read/postgres.ts";
import { stage as readHttp } from "./read/http.ts";
import { stage as filterMatch } from "./filter/match.ts";
import { stage as transformMap } from "./transform/map.ts";
import { stage as transformValidate } from "./transform/validate.ts";
import { stage as transformSla } from "./transform/sla.ts";
import { stage as transformGeocode } from "./transform/geocode.ts";
import { stage as transformEnvelope } from "./transform/envelope.ts";
import { stage as syncTicketsSqlite } from "./sync_tickets/sqlite.ts";
import { stage as syncTicketsPostgres } from "./sync_tickets/postgres.ts";
import { stage as syncTicketsJsonExport } from "./sync_tickets/json_export.ts";
import { stage as syncResponsesSqlite } from "./sync_responses/sqlite.ts";
import { stage as syncTicketsHttp } from "./sync_tickets/http.ts";
import { stage as syncResponsesHttp } from "./sync_responses/http.ts";
import { stage as syncTicketsWebhook } from "./sync_tickets/webhook.ts";
import { stage as reportSummary } from "./report/summary.ts";
import { stage as reportJson } from "./report/json.ts";

/** Every stage ticketsync ships. */
export const stages: readonly StageDefinition[] = [
  readJson,
  readCsv,
  readFiles,
  readS3,
  readPostgres,
  readHttp,
  filterMatch,
  transformMap,
  transformValidate,
  transformSla,
  transformGeocode,
  transformEnvelope,
  syncTicketsSqlite,
  syncTicketsPostgres,
  syncTicketsJsonExport,
  syncResponsesSqlite,
  syncTicketsHttp,
  syncResponsesHttp,
  syncTicketsWebhook,
  reportSummary,
  reportJson,
] as readonly StageDefinition[];
