/**
 * In-memory emulations for the Vivenu example's tests, mounted on
 * {@linkcode StubServer}s:
 *
 * - the Vivenu tickets API: `GET /api/tickets?event=ID&top=N&skip=N` with
 *   `Authorization: Bearer <key>` (401 for an unknown key, 400 without `event`
 *   or with `top` above 1000), answering `{ rows, total }` in purchase order;
 * - the webhook receiver (the seed's Cloudflare worker): `POST <path>` with a
 *   `ticket.created` envelope; 400 for a malformed envelope, 422 for a ticket
 *   type that is not registered ("ticketTypeId not found in KV store"), else
 *   200. Every accepted envelope is kept in {@linkcode WebhookReceiver.received}.
 * @module
 */
import { jsonResponse, seededRandom, type StubServer } from "./stub_server.ts";

/** A Vivenu ticket as the API returns it (the fields the seed shows, and a few more). */
export type VivenuTicket = Record<string, unknown> & {
  _id: string;
  status: string;
  ticketName: string;
};

/** Names with and without the charity designation (the filter is case-insensitive). */
const CHARITY_NAMES = [
  "HYROX MEN | CHARITY HIA",
  "CHARITY | HYROX DOUBLES WOMEN",
  "Hyrox Mixed Relay | Charity",
];
const PLAIN_NAMES = ["HYROX WOMEN", "HYROX PRO MEN", "HYROX DOUBLES MEN"];
const GOOD_STATUSES = ["VALID", "DETAILSREQUIRED"];
const BAD_STATUSES = ["RESERVED", "INVALID", "CANCELED"];

/** A 24-hex-digit id like a MongoDB ObjectId, from a number. */
function objectId(n: number): string {
  return `6f${n.toString(16).padStart(22, "0")}`;
}

/**
 * `total` tickets of `eventId`: `wrongStatus` of them with a status the sync
 * skips, `notCharity` more with a valid status but no charity designation,
 * the rest valid charity tickets; shuffled with a fixed seed.
 */
export function vivenuTickets(
  eventId: string,
  options: { total: number; wrongStatus: number; notCharity: number; seed?: number },
): VivenuTicket[] {
  const random = seededRandom(options.seed ?? 11);
  const eventNumber = parseInt(eventId.replace(/[^0-9a-f]/gi, "").slice(-6) || "1", 16);
  const tickets = Array.from({ length: options.total }, (_, i): VivenuTicket => {
    const wrong = i < options.wrongStatus;
    const plain = !wrong && i < options.wrongStatus + options.notCharity;
    const names = plain || (wrong && i % 2 === 1) ? PLAIN_NAMES : CHARITY_NAMES;
    return {
      _id: objectId(eventNumber * 100_000 + i),
      sellerId: "64a0c0ffee00000000000001",
      event: eventId,
      ticketTypeId: `tt-${i % 3}`,
      ticketName: names[i % names.length],
      status: wrong ? BAD_STATUSES[i % BAD_STATUSES.length] : GOOD_STATUSES[i % 2],
      firstname: `First${i}`,
      lastname: `Last${i}`,
      email: `buyer${i}@example.com`,
      barcode: `BC${String(i).padStart(6, "0")}`,
      createdAt: new Date(Date.UTC(2025, 5, 1) + i * 60_000).toISOString(),
    };
  });
  // Fisher-Yates with the seeded generator: filtered tickets are spread over all pages.
  for (let i = tickets.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [tickets[i], tickets[j]] = [tickets[j], tickets[i]];
  }
  return tickets;
}

/** One list call the API accepted. */
export interface VivenuCall {
  event: string;
  top: number;
  skip: number;
  key: string;
}

/** The emulated tickets API: events' tickets and a log of list calls. */
export class VivenuApi {
  /** Tickets by event id, in purchase order. */
  readonly events = new Map<string, VivenuTicket[]>();
  readonly calls: VivenuCall[] = [];
  constructor(readonly keys: readonly string[]) {}
}

/** Mounts the tickets API on `stub`; `keys` are the API keys it accepts. */
export function mountVivenu(stub: StubServer, options: { keys: string[] }): VivenuApi {
  const api = new VivenuApi(options.keys);
  stub.route("GET", "/api/tickets", (req) => {
    const auth = req.headers.get("authorization") ?? "";
    const key = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    if (!api.keys.includes(key)) return jsonResponse({ message: "Unauthorized" }, 401);
    const event = req.query.get("event");
    const top = Number(req.query.get("top") ?? 25);
    const skip = Number(req.query.get("skip") ?? 0);
    if (!event) return jsonResponse({ message: '"event" is required' }, 400);
    if (!Number.isInteger(top) || top < 1 || top > 1000) {
      return jsonResponse({ message: '"top" must be 1-1000' }, 400);
    }
    api.calls.push({ event, top, skip, key });
    const tickets = api.events.get(event) ?? [];
    return { rows: tickets.slice(skip, skip + top), total: tickets.length };
  });
  return api;
}

/** The webhook receiver: what it accepted, and which ticket types it knows. */
export class WebhookReceiver {
  /** Accepted envelopes with their Idempotency-Key and arrival time, per path. */
  readonly received: { path: string; key: string | null; at: number; body: Envelope }[] = [];
  /** Ticket type ids that answer 422 (not in the KV store). */
  readonly unknownTypes = new Set<string>();

  /** Accepted envelopes sent to `path`. */
  at(path: string): Envelope[] {
    return this.received.filter((r) => r.path === path).map((r) => r.body);
  }
}

/** The envelope the webhook expects. */
export interface Envelope {
  id: string;
  sellerId?: string;
  type: string;
  mode: string;
  data: { ticket: VivenuTicket };
}

/** Mounts the webhook receiver on `stub` at `paths` (e.g. `/ticket-created`, `/test-created`). */
export function mountWebhook(stub: StubServer, paths: string[]): WebhookReceiver {
  const receiver = new WebhookReceiver();
  for (const path of paths) {
    stub.route("POST", path, (req) => {
      const body = req.json as Envelope | undefined;
      const ticket = body?.data?.ticket;
      if (!body || typeof body.id !== "string" || body.type !== "ticket.created" || !ticket?._id) {
        return jsonResponse({ error: "expected a ticket.created envelope" }, 400);
      }
      if (receiver.unknownTypes.has(String(ticket.ticketTypeId))) {
        return jsonResponse({ error: "ticketTypeId not found in KV store" }, 422);
      }
      receiver.received.push({
        path,
        key: req.headers.get("idempotency-key"),
        at: req.at,
        body,
      });
      return { ok: true };
    });
  }
  return receiver;
}

if (import.meta.main) {
  // `deno run --allow-net --allow-read tests/vivenu_api.ts --port 8766 --key K`: the tickets API
  // on PORT (event "demo" of 1000 tickets, and the fixture's event) and the webhook on PORT+1
  // (two hosts, as in production, so the webhook's spacing does not slow the reads).
  const { parseArgs } = await import("node:util");
  const { StubServer } = await import("./stub_server.ts");
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8766" },
      key: { type: "string", default: "dev-key" },
    },
  });
  const stub = await StubServer.start({ port: Number(values.port) });
  const hooks = await StubServer.start({ port: Number(values.port) + 1 });
  const api = mountVivenu(stub, { keys: [values.key!] });
  api.events.set("demo", vivenuTickets("demo", { total: 1000, wrongStatus: 50, notCharity: 200 }));
  const fixture = JSON.parse(
    await Deno.readTextFile(new URL("../fixtures/vivenu/tickets.json", import.meta.url)),
  );
  api.events.set("68108c20c5c88849372bfb61", fixture.rows);
  const receiver = mountWebhook(hooks, ["/ticket-created", "/test-created"]);
  hooks.route(
    "GET",
    "/received",
    () => receiver.received.map((r) => ({ path: r.path, id: r.body.id })),
  );
  console.log(
    `Emulated Vivenu API on ${stub.url}/api/tickets (key "${values.key}", events "demo" and ` +
      `"68108c20c5c88849372bfb61"); webhook on ${hooks.url}/ticket-created and /test-created ` +
      `(GET ${hooks.url}/received lists what it got)`,
  );
}
