import assert from "node:assert/strict";
import { parseCommandLine } from "./args.ts";
import { ConfigError } from "./errors.ts";

Deno.test("parseCommandLine() separates global options from pipeline parameters", () => {
  const args = parseCommandLine([
    "run",
    "examples/servicedesk/pipeline.json",
    "--tenant-id",
    "acme",
    "--days=90",
    "--limit",
    "10",
    "--var",
    "region=ITALY",
    "--log-format",
    "json",
    "--full",
  ]);
  assert.equal(args.command, "run");
  assert.deepEqual(args.positionals, ["examples/servicedesk/pipeline.json"]);
  assert.deepEqual(args.params, { "tenant-id": "acme", days: "90" });
  assert.deepEqual(args.vars, { region: "ITALY" });
  assert.equal(args.limit, 10);
  assert.equal(args.logFormat, "json");
  assert.equal(args.full, true);
});

Deno.test("parseCommandLine() rejects bad values naming the option", () => {
  assert.throws(() => parseCommandLine(["run", "c.json", "--limit", "ten"]), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(error.problems, ['--limit: expected a whole number, got "ten"']);
    return true;
  });
  assert.throws(
    () => parseCommandLine(["run", "c.json", "--log-format", "xml", "--var", "novalue"]),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, [
        '--var: expected NAME=value, got "novalue"',
        '--log-format: expected "human" or "json", got "xml"',
      ]);
      return true;
    },
  );
  assert.throws(
    () => parseCommandLine(["runn"]),
    /Unknown command "runn": expected one of run, plan/,
  );
});

Deno.test("parseCommandLine() defaults to help and understands a boolean parameter", () => {
  assert.equal(parseCommandLine([]).command, "help");
  assert.deepEqual(parseCommandLine(["run", "c.json", "--test"]).params, { test: true });
  assert.equal(parseCommandLine(["run", "c.json", "--help"]).help, true);
});

Deno.test("parseCommandLine() refuses a stray positional argument instead of ignoring it", () => {
  assert.throws(
    () => parseCommandLine(["run", "p.json", "extra-arg"]),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(error.problems, [
        'run: unexpected argument "extra-arg"; it takes one: CONFIG',
      ]);
      return true;
    },
  );
  assert.throws(() => parseCommandLine(["schema", "x"]), /schema: unexpected argument "x"/);
  assert.deepEqual(
    parseCommandLine(["state", "p.json", "record", "K1"]).positionals,
    ["p.json", "record", "K1"],
  );
});
