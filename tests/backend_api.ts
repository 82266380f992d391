/**
 * An in-memory emulation of the Texas811 backend REST API, mounted on a
 * {@linkcode StubServer}, for integration tests, the example and the benchmark.
 *
 * Routes (under `prefix`, default `/api`):
 * - `GET /tickets?field=value` lists tickets whose fields equal the query (`{ items, total }`);
 * - `GET /tickets/by-number/:number` one ticket, or 404;
 * - `GET|PUT|PATCH /tickets/:id`, `POST /tickets` (201 with the ticket);
 * - `GET|POST /tickets/:id/responses`, `PUT|PATCH /tickets/:id/responses/:rid`.
 *
 * Like a real backend it does not refuse a second ticket with the same number
 * (so tests can see duplicates), honours `Idempotency-Key` on POST (the same
 * key answers the first request's answer again and creates nothing), checks a
 * bearer token (401), and can reject chosen tickets with 422 or drop the
 * connection right after a write was stored (the client never hears the answer).
 * @module
 */
import { DROP, jsonResponse, type StubRequest, type StubServer } from "./stub_server.ts";

/** Options of {@linkcode mountBackend}. */
export interface BackendOptions {
  /** Path prefix of every route (default `/api`). */
  prefix?: string;
  /** When set, requests need `Authorization: Bearer <token>` (else 401). */
  token?: string;
  /** Tokens that may read but get 401 on every write. */
  readOnlyTokens?: string[];
}

/** A stored response (child) of a ticket. */
export type BackendResponse = Record<string, unknown> & { id: number; ticket_id: number };

/** A stored ticket. */
export type BackendTicket = Record<string, unknown> & { id: number };

/** A ticket with its responses, as {@linkcode Backend.state} shows it. */
export type TicketWithResponses = BackendTicket & { responses: BackendResponse[] };

/** The emulated backend: its data and its switches. */
export class Backend {
  readonly #tickets = new Map<number, BackendTicket>();
  /** Ticket ids by ticket number, so lookups stay O(1) with thousands of tickets (benchmark). */
  readonly #byNumber = new Map<string, Set<number>>();
  readonly #responses = new Map<number, BackendResponse[]>();
  readonly #idempotent = new Map<string, { status: number; body: unknown }>();
  readonly #rejected = new Map<string, { status: number; message: string }>();
  #nextTicket = 1;
  #nextResponse = 1;
  #dropWrites = 0;

  /** Every ticket with its responses, ordered by id (a deep copy). */
  state(): TicketWithResponses[] {
    return [...this.#tickets.values()].map((ticket) => ({
      ...structuredClone(ticket),
      responses: structuredClone(this.#responses.get(ticket.id) ?? []),
    }));
  }

  /** How many tickets are stored (cheap, for polling). */
  ticketCount(): number {
    return this.#tickets.size;
  }

  /** Tickets with this number (more than one means a duplicate was created). */
  ticketsByNumber(number: string): TicketWithResponses[] {
    return this.state().filter((ticket) => ticket.ticket_number === number);
  }

  /** Answers every write of the ticket with this number with `status` (default 422). */
  reject(
    ticketNumber: string,
    status = 422,
    message = "excavator_phone is not a valid phone",
  ): void {
    this.#rejected.set(ticketNumber, { status, message });
  }

  /** Stops rejecting the ticket. */
  accept(ticketNumber: string): void {
    this.#rejected.delete(ticketNumber);
  }

  /** The next `count` successful writes are stored, then their connection is dropped unanswered. */
  dropAfterWrite(count: number): void {
    this.#dropWrites = count;
  }

  /** Adds a ticket directly (test setup), e.g. to create a duplicate. */
  insertTicket(fields: Record<string, unknown>): BackendTicket {
    const ticket = { ...structuredClone(fields), id: this.#nextTicket++ } as BackendTicket;
    this.#store(ticket);
    return ticket;
  }

  /** Deletes a ticket directly (test setup: a remote row removed by someone else). */
  deleteTicket(id: number): void {
    this.#unindex(id);
    this.#tickets.delete(id);
    this.#responses.delete(id);
  }

  /** Mounts the routes on `stub`. */
  mount(stub: StubServer, options: BackendOptions = {}): void {
    const prefix = (options.prefix ?? "/api").replace(/\/+$/, "");
    const guard = (handler: (req: StubRequest) => unknown) => (req: StubRequest) => {
      const denied = this.#authorize(req, options);
      return denied ?? handler(req);
    };
    const ticketOf = (req: StubRequest) => this.#tickets.get(Number(req.params.id));

    stub.route(
      "GET",
      `${prefix}/tickets`,
      guard((req) => {
        const number = req.query.get("ticket_number");
        const candidates = number === null ? [...this.#tickets.values()] : this.#withNumber(number);
        const items = candidates.filter((ticket) =>
          [...req.query.entries()].every(([name, value]) => String(ticket[name] ?? "") === value)
        );
        return { items, total: items.length };
      }),
    );
    stub.route(
      "GET",
      `${prefix}/tickets/by-number/:number`,
      guard((req) => {
        const found = this.#withNumber(req.params.number)[0];
        return found ?? notFound(`ticket number "${req.params.number}"`);
      }),
    );
    stub.route(
      "GET",
      `${prefix}/tickets/:id`,
      guard((req) => {
        return ticketOf(req) ?? notFound(`ticket ${req.params.id}`);
      }),
    );
    stub.route(
      "POST",
      `${prefix}/tickets`,
      guard((req) =>
        this.#idempotently(req, () => {
          const body = objectBody(req);
          if (body instanceof Response) return body;
          if (typeof body.ticket_number !== "string" || body.ticket_number === "") {
            return unprocessable("ticket_number is required");
          }
          const rejected = this.#rejection(body.ticket_number);
          if (rejected) return rejected;
          const ticket = this.insertTicket(body);
          return { status: 201, body: ticket };
        })
      ),
    );
    for (const method of ["PUT", "PATCH"]) {
      stub.route(
        method,
        `${prefix}/tickets/:id`,
        guard((req) => {
          const ticket = ticketOf(req);
          if (!ticket) return notFound(`ticket ${req.params.id}`);
          const body = objectBody(req);
          if (body instanceof Response) return body;
          const rejected = this.#rejection(String(body.ticket_number ?? ticket.ticket_number));
          if (rejected) return rejected;
          const next = method === "PUT"
            ? { ...body, id: ticket.id }
            : { ...ticket, ...body, id: ticket.id };
          this.#store(next as BackendTicket);
          return this.#written(jsonResponse(next));
        }),
      );
    }
    stub.route(
      "GET",
      `${prefix}/tickets/:id/responses`,
      guard((req) => {
        const ticket = ticketOf(req);
        if (!ticket) return notFound(`ticket ${req.params.id}`);
        const items = this.#responses.get(ticket.id) ?? [];
        return { items, total: items.length };
      }),
    );
    stub.route(
      "POST",
      `${prefix}/tickets/:id/responses`,
      guard((req) =>
        this.#idempotently(req, () => {
          const ticket = ticketOf(req);
          if (!ticket) return notFound(`ticket ${req.params.id}`);
          const body = objectBody(req);
          if (body instanceof Response) return body;
          const rejected = this.#rejection(String(ticket.ticket_number));
          if (rejected) return rejected;
          const response = {
            ...body,
            id: this.#nextResponse++,
            ticket_id: ticket.id,
          } as BackendResponse;
          const list = this.#responses.get(ticket.id) ?? [];
          list.push(response);
          this.#responses.set(ticket.id, list);
          return { status: 201, body: response };
        })
      ),
    );
    for (const method of ["PUT", "PATCH"]) {
      stub.route(
        method,
        `${prefix}/tickets/:id/responses/:rid`,
        guard((req) => {
          const ticket = ticketOf(req);
          const list = ticket ? this.#responses.get(ticket.id) ?? [] : [];
          const index = list.findIndex((response) => response.id === Number(req.params.rid));
          if (!ticket || index < 0) return notFound(`response ${req.params.rid}`);
          const body = objectBody(req);
          if (body instanceof Response) return body;
          const rejected = this.#rejection(String(ticket.ticket_number));
          if (rejected) return rejected;
          const current = list[index];
          const base = method === "PUT" ? {} : current;
          list[index] = {
            ...base,
            ...body,
            id: current.id,
            ticket_id: ticket.id,
          } as BackendResponse;
          return this.#written(jsonResponse(list[index]));
        }),
      );
    }
  }

  #store(ticket: BackendTicket): void {
    this.#unindex(ticket.id);
    this.#tickets.set(ticket.id, ticket);
    const number = String(ticket.ticket_number ?? "");
    const ids = this.#byNumber.get(number) ?? new Set<number>();
    ids.add(ticket.id);
    this.#byNumber.set(number, ids);
  }

  #unindex(id: number): void {
    const old = this.#tickets.get(id);
    if (old) this.#byNumber.get(String(old.ticket_number ?? ""))?.delete(id);
  }

  /** Tickets whose number is `number`, in id order. */
  #withNumber(number: string): BackendTicket[] {
    const ids = [...this.#byNumber.get(number) ?? []].sort((a, b) => a - b);
    return ids.map((id) => this.#tickets.get(id)!);
  }

  #authorize(req: StubRequest, options: BackendOptions): Response | undefined {
    if (options.token === undefined) return undefined;
    const given = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "")?.[1];
    if (given === options.token) return undefined;
    if (given !== undefined && options.readOnlyTokens?.includes(given) && req.method === "GET") {
      return undefined;
    }
    return jsonResponse({ error: "invalid or missing token" }, 401);
  }

  #rejection(ticketNumber: string): Response | undefined {
    const rejected = this.#rejected.get(ticketNumber);
    if (!rejected) return undefined;
    return jsonResponse({ error: rejected.message, ticket_number: ticketNumber }, rejected.status);
  }

  /**
   * Runs a create once per `Idempotency-Key`: a repeated key gets the stored
   * answer again. Only successful creates are remembered (a 422 may be retried).
   */
  #idempotently(
    req: StubRequest,
    create: () => { status: number; body: unknown } | Response,
  ): Response | typeof DROP {
    const key = req.headers.get("idempotency-key");
    const scope = key === null ? null : `${req.path}\u0000${key}`;
    if (scope !== null) {
      const stored = this.#idempotent.get(scope);
      if (stored) {
        return jsonResponse(stored.body, stored.status, { "idempotent-replayed": "true" });
      }
    }
    const answer = create();
    if (answer instanceof Response) return answer;
    if (scope !== null) this.#idempotent.set(scope, answer);
    return this.#written(jsonResponse(answer.body, answer.status));
  }

  /** A stored write's answer, or a dropped connection when drops are armed. */
  #written(response: Response): Response | typeof DROP {
    if (this.#dropWrites > 0) {
      this.#dropWrites--;
      return DROP;
    }
    return response;
  }
}

/** Mounts a fresh {@linkcode Backend} on `stub` and returns it. */
export function mountBackend(stub: StubServer, options: BackendOptions = {}): Backend {
  const backend = new Backend();
  backend.mount(stub, options);
  return backend;
}

function notFound(what: string): Response {
  return jsonResponse({ error: `Not found: ${what}` }, 404);
}

function unprocessable(message: string): Response {
  return jsonResponse({ error: message }, 422);
}

function objectBody(req: StubRequest): Record<string, unknown> | Response {
  const body = req.json;
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return unprocessable("expected a JSON object body");
  }
  return structuredClone(body) as Record<string, unknown>;
}
