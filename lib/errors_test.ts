import assert from "node:assert/strict";
import {
  ConfigError,
  errorMessage,
  ExitCode,
  LockedError,
  MissingError,
  RecordError,
  RemoteError,
  TryLaterError,
} from "./errors.ts";

Deno.test("errors carry the exit codes the README promises", () => {
  assert.equal(new ConfigError("bad").exitCode, ExitCode.Usage);
  assert.equal(new MissingError("gone").exitCode, 2);
  assert.equal(new RemoteError("refused", 401).exitCode, 3);
  assert.equal(new LockedError("busy").exitCode, 75);
  assert.equal(new TryLaterError("later", 60_000).exitCode, 75);
  assert.equal(new RecordError("422", 422).status, 422);
  assert.equal(new RemoteError("x").name, "RemoteError");
});

Deno.test("ConfigError lists every problem under its message", () => {
  const error = new ConfigError('Invalid config "p.json"', ["a: expected x", "b: expected y"]);
  assert.equal(error.message, 'Invalid config "p.json":\n  a: expected x\n  b: expected y');
  assert.deepEqual(error.problems, ["a: expected x", "b: expected y"]);
  assert.equal(errorMessage("plain"), "plain");
  assert.equal(errorMessage(new Error("boom")), "boom");
});
