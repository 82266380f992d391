/**
 * `transform.geocode`: sets latitude/longitude from a Nominatim- or
 * LocationIQ-compatible geocoder (`GET {baseUrl}/search?q=...&format=json&limit=1`).
 *
 * Each record gets a coarse lookup (cluster level, e.g. "{town}, {region},
 * Kenya"); records matching `preciseWhen` also get a precise one (e.g.
 * "{location}, {town}, Kenya"). A precise result farther than `maxDistanceKm`
 * from the town (gazetteer) or from the coarse result is a wrong-city match:
 * it is rejected and the coarse point is used. A record that cannot be placed
 * passes on with null coordinates and the reason; geocoding never
 * dead-letters.
 *
 * Every normalised query is cached in the state (`geocode` namespace), empty
 * answers included, so no query is sent twice, in one run or across runs.
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import { mapConcurrent } from "../../lib/concurrency.ts";
import { ConfigError, errorMessage, MissingError, RecordError } from "../../lib/errors.ts";
import { getPath, renderTemplate, setPath, templateFields } from "../../lib/paths.ts";
import { compilePredicate, predicateSchema } from "../../lib/predicate.ts";
import { rateLimitSchema } from "../../lib/rate_limit.ts";
import { retrySchema } from "../../lib/retry.ts";
import { secret } from "../../lib/secret.ts";
import { defineStage, type Item } from "../../lib/stage.ts";

/** A point in degrees. */
export interface LatLon {
  lat: number;
  lon: number;
}

/** Mean Earth radius (IUGG), in kilometres. */
const EARTH_RADIUS_KM = 6371.0088;

/** Great-circle distance between two points, in kilometres (haversine formula). */
export function haversineKm(a: LatLon, b: LatLon): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** How queries and town names are compared: trimmed, lowercased, inner whitespace collapsed. */
export function normalizeQuery(query: string): string {
  return query.trim().toLowerCase().replace(/\s+/g, " ");
}

/** The cached answer of one query: `[]` when the geocoder found nothing. */
type CachedAnswer = { lat: string; lon: string; display_name?: string }[];

/** How a record was placed. */
export type GeocodeLevel = "precise" | "coarse" | "gazetteer";

const CACHE_NAMESPACE = "geocode";

/** Reads `{ "<town lowercased>": [lat, lon] }`; keys are normalised like queries. */
async function loadGazetteer(path: string, cwd: string): Promise<Map<string, LatLon>> {
  let text: string;
  try {
    text = await Deno.readTextFile(resolve(cwd, path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new MissingError(`Cannot read gazetteer "${path}": file does not exist`, {
        cause: error,
      });
    }
    throw new Error(`Cannot read gazetteer "${path}": ${errorMessage(error)}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`Cannot read gazetteer "${path}": ${errorMessage(error)}`);
  }
  const shape = z.record(
    z.string(),
    z.tuple([z.number().min(-90).max(90), z.number().min(-180).max(180)]),
  );
  const result = shape.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(
      `Cannot read gazetteer "${path}": ${
        issue.path.map(String).join(".") || "(top)"
      }: expected [latitude, longitude]`,
    );
  }
  return new Map(
    Object.entries(result.data).map(([town, [lat, lon]]) => [normalizeQuery(town), { lat, lon }]),
  );
}

/** The point in a geocoder answer, or `null` for an empty or unusable one. */
function firstPoint(answer: CachedAnswer): LatLon | null {
  const first = answer[0];
  if (!first) return null;
  const lat = Number(first.lat);
  const lon = Number(first.lon);
  return Number.isFinite(lat) && Number.isFinite(lon) ? { lat, lon } : null;
}

function isCachedAnswer(value: unknown): value is CachedAnswer {
  return Array.isArray(value);
}

function hasCoordinate(value: unknown): boolean {
  if (value === null || value === undefined || value === "") return false;
  return Number.isFinite(Number(value));
}

/** The `transform.geocode` stage. */
export const stage = defineStage({
  kind: "transform",
  name: "geocode",
  summary:
    "Set coordinates from a Nominatim/LocationIQ geocoder: coarse and precise lookups, a wrong-city guard, cached.",
  config: z.object({
    baseUrl: z.union([z.literal(""), z.url({ protocol: /^https?$/ })])
      .describe(
        'Geocoder base URL; "/search" is appended, e.g. "https://us1.locationiq.com/v1". "" turns geocoding off (records pass through unchanged), so a config can say "${env:GEOCODER_URL:-}".',
      ),
    apiKey: secret(z.string()).optional()
      .describe(
        'API key, sent as the key query parameter (LocationIQ); never logged. "" means none.',
      ),
    coarseQuery: z.string().min(1)
      .describe('Template of the coarse (cluster-level) query, e.g. "{town}, {region}, Kenya".'),
    preciseQuery: z.string().min(1).optional()
      .describe(
        'Template of the precise (location-level) query, e.g. "{location}, {town}, Kenya".',
      ),
    preciseWhen: predicateSchema.optional()
      .describe(
        'Which records get a precise lookup, e.g. { "field": "is_actionable", "eq": true }; default: all (when preciseQuery is set).',
      ),
    maxDistanceKm: z.number().positive().default(25)
      .describe("Wrong-city guard: a precise result farther than this from the town is rejected."),
    gazetteer: z.string().min(1).optional()
      .describe(
        'JSON file { "<town lowercased>": [lat, lon] }: the guard measures from the town there (else from the coarse result), and it places records the geocoder cannot.',
      ),
    townField: z.string().min(1).default("town")
      .describe("Field holding the town name (for the gazetteer and guard messages)."),
    countryCodes: z.string().min(1).optional()
      .describe('Limit results to these countries (countrycodes parameter), e.g. "ke".'),
    fields: z.object({
      latitude: z.string().min(1).default("latitude").describe(
        "Field for the latitude (number or null).",
      ),
      longitude: z.string().min(1).default("longitude").describe(
        "Field for the longitude (number or null).",
      ),
      level: z.string().min(1).default("geocode_level")
        .describe('Field for how the record was placed: "precise", "coarse", "gazetteer" or null.'),
      reason: z.string().min(1).default("geocode_reason")
        .describe(
          "Field for why the record was placed less precisely than asked, or not at all (null when not).",
        ),
    }).strict().prefault({}).describe("Output field names."),
    keepExisting: z.boolean().default(true)
      .describe("Pass records that already have both coordinates through unchanged."),
    concurrency: z.number().int().positive().default(4)
      .describe("Records geocoded at once."),
    rateLimit: rateLimitSchema.default({ perSecond: 2 })
      .describe("Requests to the geocoder, e.g. { perSecond: 2 } (LocationIQ free tier)."),
    retry: retrySchema.prefault({}).describe(
      "Retries of network errors, timeouts, 429 and 5xx answers.",
    ),
    timeoutMs: z.number().int().positive().default(30_000)
      .describe("Time limit of one request, in milliseconds."),
  }).strict().superRefine(function checkQueries(config, ctx) {
    for (const name of ["coarseQuery", "preciseQuery"] as const) {
      const template = config[name];
      // An empty template has its problem reported already.
      if (template && templateFields(template).length === 0) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: "expected at least one {field} placeholder (every record would ask the same)",
          input: template,
        });
      }
    }
    if (config.preciseWhen && config.preciseQuery === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["preciseWhen"],
        message:
          `expected "preciseQuery" with it: preciseWhen picks the records that get a precise lookup`,
        input: undefined,
      });
    }
  }),

  async create(config, ctx) {
    if (config.baseUrl === "") {
      ctx.log.info("Geocoding is off (baseUrl is empty): records pass through unchanged");
      return {
        process(items: AsyncIterable<Item>): AsyncIterable<Item> {
          return items;
        },
      };
    }
    const apiKey = config.apiKey || undefined;
    const gazetteer = config.gazetteer ? await loadGazetteer(config.gazetteer, ctx.cwd) : null;
    const wantsPrecise = config.preciseWhen ? compilePredicate(config.preciseWhen) : () => true;
    const client = ctx.http.client({
      baseUrl: config.baseUrl,
      rateLimit: config.rateLimit,
      retry: config.retry,
      timeoutMs: config.timeoutMs,
      concurrency: config.concurrency,
    });
    const inFlight = new Map<string, Promise<LatLon | null>>();
    const stats = { sent: 0, cached: 0, precise: 0, coarse: 0, gazetteer: 0, unplaced: 0, kept: 0 };

    /** Secrets out of a message that may quote a URL. */
    function clean(text: string): string {
      const redacted = ctx.redact(text);
      return apiKey ? redacted.split(apiKey).join("***") : redacted;
    }

    /** Asks the geocoder (or the cache) once per query; a RecordError means "no answer this run". */
    function lookup(query: string): Promise<LatLon | null> {
      const cached = ctx.state.cacheGet(CACHE_NAMESPACE, query);
      if (isCachedAnswer(cached)) {
        stats.cached++;
        return Promise.resolve(firstPoint(cached));
      }
      let pending = inFlight.get(query);
      if (pending) {
        stats.cached++;
        return pending;
      }
      pending = ask(query).finally(() => inFlight.delete(query));
      inFlight.set(query, pending);
      return pending;
    }

    async function ask(query: string): Promise<LatLon | null> {
      stats.sent++;
      const response = await client.request({
        path: "/search",
        query: {
          q: query,
          format: "json",
          limit: 1,
          key: apiKey,
          countrycodes: config.countryCodes,
        },
        // LocationIQ answers 404 "Unable to geocode" for no match.
        accept: [404],
      });
      let answer: CachedAnswer = [];
      if (response.status !== 404) {
        const body = response.json();
        if (!Array.isArray(body)) {
          throw new RecordError(
            `expected a JSON array of results, got ${JSON.stringify(body).slice(0, 200)}`,
          );
        }
        const first = body[0] as Record<string, unknown> | undefined;
        if (first) {
          answer = [{
            lat: String(first.lat),
            lon: String(first.lon),
            display_name: String(first.display_name ?? ""),
          }];
        }
      }
      ctx.state.cachePut(CACHE_NAMESPACE, query, answer);
      return firstPoint(answer);
    }

    /** One lookup of a template for a record; pushes why it gave nothing onto `reasons`. */
    async function place(
      kind: "coarse" | "precise",
      template: string,
      data: Record<string, unknown>,
      reasons: string[],
    ): Promise<{ point: LatLon; query: string } | null> {
      const empty = templateFields(template).filter((field) => {
        const value = getPath(data, field);
        return value === undefined || value === null || String(value).trim() === "";
      });
      if (empty.length > 0) {
        reasons.push(
          `${kind} query skipped: ${empty.map((field) => `"${field}"`).join(", ")} empty`,
        );
        return null;
      }
      // Field values are trimmed, so "Nakuru " and "Nakuru" ask the same query.
      const query = normalizeQuery(renderTemplate(template, data, (value) => value.trim()));
      try {
        const point = await lookup(query);
        if (point) return { point, query };
        reasons.push(`no ${kind} result for "${query}"`);
      } catch (error) {
        if (!(error instanceof RecordError)) throw error;
        reasons.push(`${kind} lookup failed: ${clean(error.message)}`);
      }
      return null;
    }

    async function geocode(item: Item): Promise<Item> {
      const { fields } = config;
      if (
        config.keepExisting &&
        hasCoordinate(getPath(item.data, fields.latitude)) &&
        hasCoordinate(getPath(item.data, fields.longitude))
      ) {
        stats.kept++;
        return item;
      }
      const reasons: string[] = [];
      const coarse = await place("coarse", config.coarseQuery, item.data, reasons);
      const townValue = getPath(item.data, config.townField);
      const town = typeof townValue === "string" || typeof townValue === "number"
        ? String(townValue).trim()
        : "";
      const townPoint = town ? gazetteer?.get(normalizeQuery(town)) : undefined;

      let placed: { point: LatLon; level: GeocodeLevel } | null = null;
      if (config.preciseQuery && wantsPrecise(item.data)) {
        const precise = await place("precise", config.preciseQuery, item.data, reasons);
        if (precise) {
          const reference = townPoint
            ? { point: townPoint, label: town }
            : coarse
            ? { point: coarse.point, label: town || coarse.query }
            : null;
          const km = reference ? haversineKm(precise.point, reference.point) : 0;
          if (reference && km > config.maxDistanceKm) {
            reasons.push(`precise result ${km.toFixed(1)} km from "${reference.label}" rejected`);
          } else {
            placed = { point: precise.point, level: "precise" };
            // Checked against the town: earlier coarse trouble no longer matters.
            // Unchecked: the coarse reason stays, saying why the guard could not run.
            if (reference) reasons.length = 0;
          }
        }
      }
      if (!placed && coarse) placed = { point: coarse.point, level: "coarse" };
      if (!placed && townPoint) placed = { point: townPoint, level: "gazetteer" };
      stats[placed ? placed.level : "unplaced"]++;

      const data = structuredClone(item.data);
      setPath(data, fields.latitude, placed ? placed.point.lat : null);
      setPath(data, fields.longitude, placed ? placed.point.lon : null);
      setPath(data, fields.level, placed ? placed.level : null);
      setPath(data, fields.reason, reasons.length > 0 ? reasons.join("; ") : null);
      return { ...item, data };
    }

    return {
      async *process(items: AsyncIterable<Item>): AsyncIterable<Item> {
        yield* mapConcurrent(items, config.concurrency, geocode);
        const total = stats.precise + stats.coarse + stats.gazetteer + stats.unplaced + stats.kept;
        ctx.log.info(
          "Geocoded {total} records: {precise} precise, {coarse} coarse, {gazetteer} from the gazetteer, {unplaced} unplaced, {kept} kept; {sent} queries sent, {cached} answered from cache",
          { total, ...stats },
        );
      },
    };
  },
});
