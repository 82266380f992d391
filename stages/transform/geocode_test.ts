import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { Item } from "../../lib/stage.ts";
import {
  collect,
  configProblems,
  createStage,
  fromArray,
  item,
  MemoryState,
  testContext,
  withLogs,
} from "../../tests/harness.ts";
import { type StubRequest, StubServer } from "../../tests/stub_server.ts";
import { haversineKm, type LatLon, normalizeQuery, stage } from "./geocode.ts";

const API_KEY = "pk.test-secret-4f2a9c";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

const NAKURU: LatLon = { lat: -0.3031, lon: 36.08 };
const NAIROBI: LatLon = { lat: -1.2864, lon: 36.8172 };
const MOMBASA: LatLon = { lat: -4.0435, lon: 39.6682 };
/** Due north of Nakuru, 40.2 km away: a wrong-city match. */
const FAR_FROM_NAKURU: LatLon = { lat: NAKURU.lat + 0.3615, lon: NAKURU.lon };

/** A geocoder stub answering from `places` (normalised query -> point); others get `[]`. */
async function geocoder(places: Record<string, LatLon>): Promise<StubServer> {
  const stub = await StubServer.start();
  stub.route("GET", "/v1/search", function search(req: StubRequest) {
    const point = places[req.query.get("q") ?? ""];
    if (!point) return [];
    return [{ lat: String(point.lat), lon: String(point.lon), display_name: "somewhere, Kenya" }];
  });
  return stub;
}

function config(stub: StubServer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    baseUrl: `${stub.url}/v1`,
    apiKey: API_KEY,
    coarseQuery: "{town}, {region}, Kenya",
    preciseQuery: "{location}, {town}, Kenya",
    preciseWhen: { field: "is_actionable", eq: true },
    rateLimit: { perSecond: 1000 },
    retry: { attempts: 2, initialMs: 1, jitter: false },
    ...extra,
  };
}

function ticket(id: string, fields: Record<string, unknown>): Item {
  return item(id, { ticket_id: id, is_actionable: "true", latitude: "", longitude: "", ...fields });
}

function byId(items: Item[]): Map<string, Record<string, unknown>> {
  return new Map(items.map((value) => [String(value.data.ticket_id), value.data]));
}

Deno.test("haversineKm() measures great-circle distance", () => {
  assert.equal(haversineKm(NAKURU, NAKURU), 0);
  const km = haversineKm(NAIROBI, MOMBASA);
  assert.ok(km > 435 && km < 445, `Nairobi-Mombasa: ${km}`);
  assert.equal(haversineKm(NAIROBI, MOMBASA), haversineKm(MOMBASA, NAIROBI));
  assert.equal(haversineKm(NAKURU, FAR_FROM_NAKURU).toFixed(1), "40.2");
  // A quarter of the meridian.
  assert.equal(Math.round(haversineKm({ lat: 0, lon: 0 }, { lat: 90, lon: 0 })), 10008);
});

Deno.test("normalizeQuery() trims, lowercases and collapses spaces", () => {
  assert.equal(
    normalizeQuery("  Kwa  Ndege\tEstate, NAKURU ,  Kenya "),
    "kwa ndege estate, nakuru , kenya",
  );
});

Deno.test("geocode() asks each distinct query once across two runs sharing a state", async () => {
  const stub = await geocoder({
    "nakuru, rift valley, kenya": NAKURU,
    "kwa ndege estate, nakuru, kenya": { lat: -0.29, lon: 36.07 },
    "milimani, nakuru, kenya": { lat: -0.28, lon: 36.06 },
  });
  try {
    const records = [
      ticket("A", { town: "Nakuru", region: "Rift Valley", location: "Kwa Ndege Estate" }),
      ticket("B", { town: "nakuru ", region: "RIFT  VALLEY", location: "kwa ndege estate" }),
      ticket("C", { town: "Nakuru", region: "Rift Valley", location: "Milimani" }),
      // The geocoder knows neither query: the empty answers are cached too.
      ticket("D", { town: "Atlantis", region: "Nowhere", location: "Harbour" }),
    ];
    const state = new MemoryState();
    const first = await createStage(
      stage,
      config(stub, { concurrency: 3 }),
      testContext({ state }).ctx,
    );
    const out = byId(await collect(first.process(fromArray(records))));
    assert.deepEqual(
      stub.log.map((req) => req.query.get("q")).sort(),
      [
        "atlantis, nowhere, kenya",
        "harbour, atlantis, kenya",
        "kwa ndege estate, nakuru, kenya",
        "milimani, nakuru, kenya",
        "nakuru, rift valley, kenya",
      ],
    );
    for (const req of stub.log) {
      assert.equal(req.query.get("format"), "json");
      assert.equal(req.query.get("limit"), "1");
      assert.equal(req.query.get("key"), API_KEY);
    }
    assert.deepEqual(
      [
        out.get("A")!.latitude,
        out.get("A")!.longitude,
        out.get("A")!.geocode_level,
        out.get("A")!.geocode_reason,
      ],
      [-0.29, 36.07, "precise", null],
    );
    assert.equal(out.get("B")!.latitude, -0.29);
    assert.equal(out.get("C")!.longitude, 36.06);
    assert.equal(out.get("D")!.latitude, null);
    assert.equal(state.cacheGet("geocode", "atlantis, nowhere, kenya") !== undefined, true);
    assert.deepEqual(state.cacheGet("geocode", "atlantis, nowhere, kenya"), []);

    const asked = stub.log.length;
    const second = await createStage(
      stage,
      config(stub, { concurrency: 3 }),
      testContext({ state }).ctx,
    );
    const again = byId(await collect(second.process(fromArray(records))));
    assert.equal(stub.log.length, asked, "the second run is answered from the cache");
    assert.deepEqual(again, out);
  } finally {
    await stub.close();
  }
});

Deno.test("geocode() rejects a precise result 40 km from the town and falls back to the coarse point", async () => {
  const stub = await geocoder({
    "nakuru, rift valley, kenya": NAKURU,
    "section 58, nakuru, kenya": FAR_FROM_NAKURU,
  });
  try {
    const { ctx, deadLetters } = testContext();
    const transform = await createStage(stage, config(stub), ctx);
    const [out] = await collect(
      transform.process(
        fromArray([ticket("A", { town: "Nakuru", region: "Rift Valley", location: "Section 58" })]),
      ),
    );
    assert.equal(out.data.latitude, NAKURU.lat);
    assert.equal(out.data.longitude, NAKURU.lon);
    assert.equal(out.data.geocode_level, "coarse");
    assert.equal(out.data.geocode_reason, 'precise result 40.2 km from "Nakuru" rejected');
    assert.equal(deadLetters.length, 0);

    // Within the limit, the same result is kept.
    const lenient = await createStage(
      stage,
      config(stub, { maxDistanceKm: 50 }),
      testContext().ctx,
    );
    const [kept] = await collect(
      lenient.process(
        fromArray([ticket("A", { town: "Nakuru", region: "Rift Valley", location: "Section 58" })]),
      ),
    );
    assert.equal(kept.data.geocode_level, "precise");
    assert.equal(kept.data.latitude, FAR_FROM_NAKURU.lat);
  } finally {
    await stub.close();
  }
});

Deno.test("geocode() measures from the gazetteer town when one is configured", async () => {
  // The coarse answer is off (Nairobi), the gazetteer knows where Nakuru is.
  const stub = await geocoder({
    "nakuru, rift valley, kenya": NAIROBI,
    "kwa ndege estate, nakuru, kenya": { lat: -0.29, lon: 36.07 },
  });
  try {
    const extra = { gazetteer: "fixtures/inc/gazetteer.json" };
    const transform = await createStage(stage, config(stub, extra), testContext({ cwd: ROOT }).ctx);
    const out = byId(
      await collect(transform.process(fromArray([
        ticket("A", { town: "Nakuru", region: "Rift Valley", location: "Kwa Ndege Estate" }),
        // Unknown to the geocoder, known to the gazetteer.
        ticket("B", {
          town: "Eldoret",
          region: "Rift Valley",
          location: "",
          is_actionable: "false",
        }),
      ]))),
    );
    assert.equal(out.get("A")!.geocode_level, "precise");
    assert.equal(out.get("A")!.latitude, -0.29);
    assert.deepEqual(
      [out.get("B")!.latitude, out.get("B")!.longitude, out.get("B")!.geocode_level],
      [0.5143, 35.2698, "gazetteer"],
    );
    assert.equal(
      out.get("B")!.geocode_reason,
      'no coarse result for "eldoret, rift valley, kenya"',
    );
  } finally {
    await stub.close();
  }
});

Deno.test("geocode() passes an unplaceable record on with null coordinates and the reason", async () => {
  const stub = await geocoder({ "nakuru, rift valley, kenya": NAKURU });
  try {
    const { ctx, deadLetters, drops } = testContext();
    const transform = await createStage(stage, config(stub), ctx);
    const out = byId(
      await collect(transform.process(fromArray([
        ticket("EMPTY", { town: "", region: "", location: "" }),
        ticket("UNKNOWN", { town: "Atlantis", region: "Nowhere", location: "Harbour" }),
        ticket("NOT-ACTIONABLE", {
          town: "Nakuru",
          region: "Rift Valley",
          location: "Lanet",
          is_actionable: "false",
        }),
      ]))),
    );
    assert.equal(out.size, 3);
    assert.deepEqual(out.get("EMPTY"), {
      ...ticket("EMPTY", { town: "", region: "", location: "" }).data,
      latitude: null,
      longitude: null,
      geocode_level: null,
      geocode_reason:
        'coarse query skipped: "town", "region" empty; precise query skipped: "location", "town" empty',
    });
    assert.equal(out.get("UNKNOWN")!.latitude, null);
    assert.equal(
      out.get("UNKNOWN")!.geocode_reason,
      'no coarse result for "atlantis, nowhere, kenya"; no precise result for "harbour, atlantis, kenya"',
    );
    // preciseWhen does not match: coarse only, and that is no failure.
    assert.equal(out.get("NOT-ACTIONABLE")!.geocode_level, "coarse");
    assert.equal(out.get("NOT-ACTIONABLE")!.geocode_reason, null);
    assert.equal(stub.requests("GET", "/v1/search").length, 3);
    assert.equal(deadLetters.length, 0);
    assert.equal(drops.length, 0);
  } finally {
    await stub.close();
  }
});

Deno.test("geocode() turns a failed query into null coordinates and never logs the API key", async () => {
  const stub = await geocoder({ "nakuru, rift valley, kenya": NAKURU });
  // The first coarse query: a 503 (retried, logged), then a 503 again: retries exhausted.
  stub.script("GET", "/v1/search", [503, 503]);
  try {
    await withLogs(async (lines) => {
      const { ctx, state, deadLetters } = testContext();
      const transform = await createStage(stage, config(stub, { concurrency: 1 }), ctx);
      const out = byId(
        await collect(transform.process(fromArray([
          ticket("A", { town: "Nakuru", region: "Rift Valley", location: "" }),
          ticket("B", { town: "Nakuru", region: "Rift Valley", location: "" }),
        ]))),
      );
      assert.equal(out.get("A")!.latitude, null);
      const reason = String(out.get("A")!.geocode_reason);
      assert.match(
        reason,
        /^coarse lookup failed: GET .*\/v1\/search\?.* failed after 2 attempts: answered 503/,
      );
      assert.match(reason, /key=\*\*\*/);
      // A failure is not cached: B asks again and gets the answer.
      assert.equal(out.get("B")!.latitude, NAKURU.lat);
      assert.deepEqual(state.cacheGet("geocode", "nakuru, rift valley, kenya"), [
        { lat: String(NAKURU.lat), lon: String(NAKURU.lon), display_name: "somewhere, Kenya" },
      ]);
      assert.equal(deadLetters.length, 0);
      assert.ok(lines.some((line) => line.startsWith("Retrying GET")), lines.join("\n"));
      assert.ok(lines.some((line) => line.startsWith("Geocoded 2 records")), lines.join("\n"));
      for (const line of [...lines, reason]) assert.ok(!line.includes(API_KEY), line);
      assert.ok(stub.log.every((req) => req.query.get("key") === API_KEY));
    });
  } finally {
    await stub.close();
  }
});

Deno.test("geocode() reads a 404 as no result and caches it", async () => {
  const stub = await StubServer.start();
  stub.route("GET", "/v1/search", function notFound() {
    return new Response(JSON.stringify({ error: "Unable to geocode" }), { status: 404 });
  });
  try {
    const { ctx, state } = testContext();
    const transform = await createStage(
      stage,
      config(stub, { preciseQuery: undefined, preciseWhen: undefined }),
      ctx,
    );
    const [out] = await collect(
      transform.process(fromArray([ticket("A", { town: "Nakuru", region: "Rift Valley" })])),
    );
    assert.equal(out.data.latitude, null);
    assert.equal(out.data.geocode_reason, 'no coarse result for "nakuru, rift valley, kenya"');
    assert.deepEqual(state.cacheGet("geocode", "nakuru, rift valley, kenya"), []);
  } finally {
    await stub.close();
  }
});

Deno.test("geocode() keeps records that already have coordinates", async () => {
  const stub = await geocoder({});
  try {
    const transform = await createStage(stage, config(stub), testContext().ctx);
    const placed = ticket("A", {
      town: "Nakuru",
      region: "Rift Valley",
      location: "x",
      latitude: "-0.3",
      longitude: "36.1",
    });
    assert.deepEqual(await collect(transform.process(fromArray([placed]))), [placed]);
    assert.equal(stub.log.length, 0);
  } finally {
    await stub.close();
  }
});

Deno.test("transform.geocode config: rules across fields are reported at validation", async () => {
  const stub = await geocoder({});
  try {
    const { preciseQuery: _, ...withoutPrecise } = config(stub);
    assert.deepEqual(configProblems(stage, { ...withoutPrecise, coarseQuery: "Kenya" }), [
      'stages[1].coarseQuery: expected at least one {field} placeholder (every record would ask the same), got "Kenya"',
      'stages[1].preciseWhen: expected "preciseQuery" with it: preciseWhen picks the records that get a precise lookup',
    ]);
    assert.deepEqual(configProblems(stage, config(stub, { preciseQuery: "Nairobi" })), [
      'stages[1].preciseQuery: expected at least one {field} placeholder (every record would ask the same), got "Nairobi"',
    ]);
    assert.deepEqual(configProblems(stage, config(stub)), []);
    const parsed = stage.config.parse({
      baseUrl: "https://us1.locationiq.com/v1",
      coarseQuery: "{town}, Kenya",
    });
    assert.equal(parsed.maxDistanceKm, 25);
    assert.deepEqual(parsed.rateLimit, { perSecond: 2 });
    assert.deepEqual(parsed.fields, {
      latitude: "latitude",
      longitude: "longitude",
      level: "geocode_level",
      reason: "geocode_reason",
    });
  } finally {
    await stub.close();
  }
});

Deno.test('transform.geocode with baseUrl "" is off: records pass through and nothing is asked', async () => {
  const stub = await geocoder({ "nakuru, rift valley, kenya": NAKURU });
  try {
    await withLogs(async (lines) => {
      const { ctx } = testContext();
      const runtime = await createStage(
        stage,
        config(stub, { baseUrl: "", apiKey: "", gazetteer: "fixtures/inc/missing.json" }),
        ctx,
      );
      const input = [ticket("INC1", { town: "Nakuru", region: "Rift Valley", location: "Lanet" })];
      const out = await collect(runtime.process(fromArray(input)));
      assert.deepEqual(out, input);
      assert.equal(stub.log.length, 0);
      assert.ok(lines.some((line) => line.includes("Geocoding is off")), lines.join("\n"));
    });
    assert.throws(
      () => stage.config.parse({ baseUrl: "ftp://x", coarseQuery: "{town}" }),
      /baseUrl/,
    );
  } finally {
    await stub.close();
  }
});
