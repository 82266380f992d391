/**
 * The benchmark's backend: the stub server with the emulated Texas811 API,
 * run in a Web Worker so it has its own thread (as a real backend has its own
 * machine) and does not compete with the client being measured.
 *
 * Messages in: `{ cmd: "start", latencyMs, token }`, `{ cmd: "stats" }`,
 * `{ cmd: "resetLog" }`, `{ cmd: "close" }`; each is answered with one message.
 * @module
 */
/// <reference lib="deno.worker" />
import { type Backend, mountBackend } from "../../tests/backend_api.ts";
import { StubServer } from "../../tests/stub_server.ts";

/** What `stats` answers. */
export interface StubStats {
  requests: number;
  writes: number;
  tickets: number;
  responses: number;
}

/** A message to the worker. */
export type StubCommand =
  | { cmd: "start"; latencyMs: number; token: string }
  | { cmd: "stats" }
  | { cmd: "resetLog" }
  | { cmd: "close" };

let stub: StubServer | undefined;
let backend: Backend | undefined;

self.onmessage = async function handle(event: MessageEvent<StubCommand>) {
  const message = event.data;
  switch (message.cmd) {
    case "start":
      stub = await StubServer.start({ latencyMs: message.latencyMs });
      backend = mountBackend(stub, { token: message.token });
      self.postMessage({ url: stub.url });
      break;
    case "stats": {
      const state = backend!.state();
      const stats: StubStats = {
        requests: stub!.log.length,
        writes: stub!.log.filter((req) => req.method !== "GET").length,
        tickets: state.length,
        responses: state.reduce((n, ticket) => n + ticket.responses.length, 0),
      };
      self.postMessage(stats);
      break;
    }
    case "resetLog":
      stub!.log.length = 0;
      self.postMessage({ ok: true });
      break;
    case "close":
      await stub?.close();
      self.postMessage({ ok: true });
      self.close();
      break;
  }
};
