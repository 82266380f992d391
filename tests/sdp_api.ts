/**
 * An in-memory emulation of the ManageEngine ServiceDesk Plus API v3 request
 * list, mounted on a {@linkcode StubServer}, for the ServiceDesk example's
 * tests.
 *
 * `GET /api/v3/requests?input_data={"list_info":{...}}` as SDP documents it:
 * - `Authorization: Zoho-oauthtoken <token>` (else 401 with an SDP error body);
 * - `list_info.start_index` (1-based) and `row_count` (at most 100, else 400);
 * - `list_info.search_criteria`: `{ field, condition, values }` entries, with
 *   `status.name` `is` [names] and `resolved_time` `between` [from, to] (epoch
 *   ms, both included), combined with `and`; other fields are refused (400);
 * - `list_info.get_total_count: true` adds `total_count`;
 * - answers `{ response_status, list_info: { has_more_rows, start_index,
 *   row_count[, total_count] }, requests }` in the order requests were added.
 * @module
 */
import { jsonResponse, seededRandom, type StubRequest, type StubServer } from "./stub_server.ts";

/** One SDP request (ticket) as the API returns it; tests may break it on purpose. */
export type SdpRequest = Record<string, unknown>;

/** What a list call asked for, for assertions. */
export interface SdpListCall {
  startIndex: number;
  rowCount: number;
  statuses: string[] | undefined;
  resolvedFrom: number | undefined;
  resolvedTo: number | undefined;
}

/** The emulated API: its data and a log of list calls. */
export class SdpApi {
  /** Every request (ticket) the API holds, in list order. */
  readonly tickets: SdpRequest[] = [];
  /** Every accepted list call, parsed. */
  readonly calls: SdpListCall[] = [];

  constructor(readonly token: string) {}

  /** The answer to one list call. */
  handle(req: StubRequest): Response {
    if (req.headers.get("authorization") !== `Zoho-oauthtoken ${this.token}`) {
      return sdpError(401, 4001, "UNAUTHORISED");
    }
    let listInfo: Record<string, unknown>;
    try {
      const input = JSON.parse(req.query.get("input_data") ?? "{}");
      listInfo = input.list_info ?? {};
    } catch {
      return sdpError(400, 4005, "input_data is not valid JSON");
    }
    const startIndex = Number(listInfo.start_index ?? 1);
    const rowCount = Number(listInfo.row_count ?? 10);
    if (!Number.isInteger(startIndex) || startIndex < 1) {
      return sdpError(400, 4012, "start_index");
    }
    if (!Number.isInteger(rowCount) || rowCount < 1 || rowCount > 100) {
      return sdpError(400, 4012, "row_count");
    }
    const call: SdpListCall = {
      startIndex,
      rowCount,
      statuses: undefined,
      resolvedFrom: undefined,
      resolvedTo: undefined,
    };
    const criteria = (listInfo.search_criteria ?? []) as Record<string, unknown>[];
    for (const criterion of Array.isArray(criteria) ? criteria : [criteria]) {
      const values = criterion.values as unknown[];
      if (criterion.field === "status.name" && criterion.condition === "is") {
        call.statuses = values.map(String);
      } else if (criterion.field === "resolved_time" && criterion.condition === "between") {
        call.resolvedFrom = Number(values[0]);
        call.resolvedTo = Number(values[1]);
      } else {
        return sdpError(400, 4014, `search_criteria ${JSON.stringify(criterion)}`);
      }
    }
    this.calls.push(call);
    const matching = this.tickets.filter((ticket) => matches(ticket, call));
    const page = matching.slice(startIndex - 1, startIndex - 1 + rowCount);
    return jsonResponse({
      response_status: [{ status_code: 2000, status: "success" }],
      list_info: {
        has_more_rows: startIndex - 1 + rowCount < matching.length,
        start_index: startIndex,
        row_count: page.length,
        ...(listInfo.get_total_count === true ? { total_count: matching.length } : {}),
      },
      requests: page,
    });
  }
}

function matches(ticket: SdpRequest, call: SdpListCall): boolean {
  const status = (ticket.status as { name?: string } | undefined)?.name;
  if (call.statuses && !call.statuses.includes(String(status))) return false;
  if (call.resolvedFrom !== undefined) {
    const resolved = Number((ticket.resolved_time as { value?: unknown } | undefined)?.value);
    // A ticket without a usable resolved time is still listed (the API is not our validator).
    if (
      Number.isFinite(resolved) && (resolved < call.resolvedFrom || resolved > call.resolvedTo!)
    ) {
      return false;
    }
  }
  return true;
}

function sdpError(status: number, code: number, message: string): Response {
  return jsonResponse({
    response_status: {
      status_code: 4000,
      messages: [{ status_code: code, type: "failed", message }],
      status: "failed",
    },
  }, status);
}

const SUBJECTS = ["Server not responding", "VPN drops", "Printer jam", "Password reset"];
const TAGS = ["critical", "web-server", "network", "hardware"];

/**
 * `count` closed or resolved requests with ids from `firstId`, resolved at
 * spread-out times between `from` and `to` (epoch ms); every fifth has no
 * resolution and no tags (the API leaves them out).
 */
export function sdpTickets(
  count: number,
  options: { from: number; to: number; firstId?: number; seed?: number },
): SdpRequest[] {
  const random = seededRandom(options.seed ?? 7);
  const firstId = options.firstId ?? 100_001;
  return Array.from({ length: count }, (_, i) => {
    const resolved = Math.round(options.from + random() * (options.to - options.from));
    const ticket: SdpRequest = {
      id: String(firstId + i),
      subject: `${SUBJECTS[i % SUBJECTS.length]} #${i + 1}`,
      description: `Reported by user ${i + 1}`,
      status: { name: i % 2 === 0 ? "Closed" : "Resolved" },
      resolved_time: {
        value: String(resolved),
        display_value: new Date(resolved).toISOString(),
      },
    };
    if (i % 5 !== 4) {
      ticket.resolution = { content: `Fixed by step ${i + 1}` };
      ticket.tags = [{ name: TAGS[i % TAGS.length] }, { name: "sdp" }];
    }
    return ticket;
  });
}

/** Mounts the emulated API on `stub`. */
export function mountSdp(stub: StubServer, options: { token: string }): SdpApi {
  const api = new SdpApi(options.token);
  stub.route("GET", "/api/v3/requests", (req) => api.handle(req));
  return api;
}

if (import.meta.main) {
  // `deno run --allow-net --allow-read tests/sdp_api.ts --port 8765 --token T --tickets 150`
  const { parseArgs } = await import("node:util");
  const { StubServer } = await import("./stub_server.ts");
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8765" },
      token: { type: "string", default: "dev-token" },
      tickets: { type: "string", default: "150" },
    },
  });
  const stub = await StubServer.start({ port: Number(values.port) });
  const api = mountSdp(stub, { token: values.token! });
  const now = Date.now();
  api.tickets.push(...sdpTickets(Number(values.tickets), { from: now - 80 * 86_400_000, to: now }));
  console.log(
    `Emulated ServiceDesk Plus API on ${stub.url}/api/v3/requests (${api.tickets.length} requests, token "${values.token}")`,
  );
}
