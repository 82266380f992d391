/**
 * `transform.sla`: the SLA state of each ticket.
 *
 * Closed tickets (the `closedWhen` field holds one of its values, compared
 * trimmed and case-insensitively) keep the source's own SLA value as is:
 * the contract's definition is the source's, not a plain clock rule. Open
 * tickets get an age-based state: `now - start` of at least
 * `breachedAfterHours` is breached, of at least `atRiskAfterHours` at risk,
 * else within. The start is the first of `startFields` that holds an instant
 * (many tickets lack `created_at_service`, so `first_seen_at` is the
 * fallback). Without one the state is null and `reasonField` says why.
 * `basisField` names the field the state came from. Time comes from the
 * run's clock, read once when the stage starts reading: every ticket of a
 * snapshot is judged at the same instant.
 * @module
 */
import { z } from "zod";
import { epochMsParser, zoneSchema } from "../../lib/datetime.ts";
import { errorMessage } from "../../lib/errors.ts";
import { isEmptyValue } from "../../lib/predicate.ts";
import { getPath } from "../../lib/paths.ts";
import { defineStage, type Item } from "../../lib/stage.ts";

const field = z.string().min(1);

const configSchema = z.object({
  closedWhen: z.object({
    field: field.describe('Field holding the ticket\'s status, e.g. "status".'),
    in: z.array(z.string()).min(1).describe(
      'Values that mean closed, compared trimmed and case-insensitively, e.g. ["closed", "resolved"].',
    ),
  }).strict().default({ field: "status", in: ["closed"] }).describe(
    "When a ticket counts as closed.",
  ),
  sourceField: field.default("sla_status").describe(
    "Field with the source's SLA value, copied as is for closed tickets.",
  ),
  startFields: z.array(field).min(1).default(["created_at_service", "first_seen_at"]).describe(
    "Fields that may hold the start instant, in order; the first holding an instant wins.",
  ),
  zone: zoneSchema.optional().describe(
    'IANA zone for start times without an offset, e.g. "Africa/Nairobi"; without it such values do not count as a start.',
  ),
  breachedAfterHours: z.number().positive().default(48).describe(
    "Open tickets at least this many hours old are breached.",
  ),
  atRiskAfterHours: z.number().positive().default(36).describe(
    "Open tickets at least this many hours old (and not breached) are at risk.",
  ),
  output: field.default("sla_state").describe("Field the SLA state is written to."),
  basisField: field.default("sla_basis").describe(
    "Field naming where the state came from: the source field for closed tickets, the start field for open ones (null when there is none).",
  ),
  reasonField: field.default("sla_reason").describe(
    'Field set when the state is null for an open ticket, e.g. "no start time".',
  ),
  labels: z.object({
    breached: z.string().default("breached").describe("Label for breached open tickets."),
    atRisk: z.string().default("at_risk").describe("Label for open tickets at risk."),
    within: z.string().default("within").describe("Label for open tickets within the SLA."),
  }).strict().default({ breached: "breached", atRisk: "at_risk", within: "within" }).describe(
    "Labels written for open tickets.",
  ),
}).strict().superRefine(function checkThresholds(config, ctx) {
  const { atRiskAfterHours: atRisk, breachedAfterHours: breached } = config;
  // A threshold that is not positive has its problem reported already.
  if (atRisk > 0 && breached > 0 && atRisk > breached) {
    ctx.addIssue({
      code: "custom",
      path: ["atRiskAfterHours"],
      message: `expected a number <= breachedAfterHours (${breached})`,
      input: atRisk,
    });
  }
});

const HOUR_MS = 3_600_000;

/** The start instant of a ticket and the field it came from, or why there is none. */
type Start = { startMs: number; field: string } | { reason: string };

/** The stage definition. */
export const stage = defineStage({
  kind: "transform",
  name: "sla",
  summary: "Derive each ticket's SLA state: the source's value when closed, age-based when open.",
  config: configSchema,
  create(config, ctx) {
    const closedValues = new Set(config.closedWhen.in.map((v) => v.trim().toLowerCase()));
    const parseIsoMs = epochMsParser({ format: "iso", zone: config.zone });
    const breachedMs = config.breachedAfterHours * HOUR_MS;
    const atRiskMs = config.atRiskAfterHours * HOUR_MS;

    function isClosed(data: Record<string, unknown>): boolean {
      const status = getPath(data, config.closedWhen.field);
      if (status === null || status === undefined) return false;
      return closedValues.has(String(status).trim().toLowerCase());
    }

    function toEpochMs(value: unknown): number {
      if (typeof value === "string") return parseIsoMs(value);
      if (value instanceof Temporal.Instant) return value.epochMilliseconds;
      if (value instanceof Temporal.ZonedDateTime) return value.epochMilliseconds;
      if (value instanceof Date) return value.getTime();
      throw new Error(`expected an ISO instant, got ${JSON.stringify(value)}`);
    }

    function findStart(data: Record<string, unknown>): Start {
      const problems: string[] = [];
      for (const name of config.startFields) {
        const value = getPath(data, name);
        if (isEmptyValue(value)) continue;
        try {
          return { startMs: toEpochMs(value), field: name };
        } catch (error) {
          problems.push(`${name}: ${errorMessage(error)}`);
        }
      }
      return {
        reason: problems.length ? `no start time (${problems.join("; ")})` : "no start time",
      };
    }

    function openState(startMs: number, nowMs: number): string {
      const ageMs = nowMs - startMs;
      if (ageMs >= breachedMs) return config.labels.breached;
      if (ageMs >= atRiskMs) return config.labels.atRisk;
      return config.labels.within;
    }

    function withSla(item: Item, nowMs: number): Item {
      const data: Record<string, unknown> = { ...item.data };
      delete data[config.reasonField];
      if (isClosed(item.data)) {
        data[config.output] = getPath(item.data, config.sourceField) ?? null;
        data[config.basisField] = config.sourceField;
      } else {
        const start = findStart(item.data);
        if ("startMs" in start) {
          data[config.output] = openState(start.startMs, nowMs);
          data[config.basisField] = start.field;
        } else {
          data[config.output] = null;
          data[config.basisField] = null;
          data[config.reasonField] = start.reason;
        }
      }
      return { ...item, data };
    }

    return {
      async *process(items: AsyncIterable<Item>): AsyncGenerator<Item> {
        const nowMs = ctx.clock.now().epochMilliseconds;
        for await (const item of items) yield withSla(item, nowMs);
      },
    };
  },
});
