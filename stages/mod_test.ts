import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { stageLoaders } from "./mod.ts";
import { Registry } from "../lib/registry.ts";
import { STAGE_KINDS, stageRef } from "../lib/stage.ts";

const here = fromFileUrl(new URL(".", import.meta.url));

async function stageFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) out.push(...await stageFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts") && dir !== here) {
      out.push(relative(here, path));
    }
  }
  return out;
}

Deno.test("stages/mod.ts lists every stage file under stages/", async () => {
  const source = await Deno.readTextFile(join(here, "mod.ts"));
  const files = await stageFiles(here);
  assert.ok(files.length >= 10);
  for (const file of files) {
    assert.ok(source.includes(`"./${file}"`), `stages/${file} is not imported by stages/mod.ts`);
  }
});

Deno.test("every stage is defined once, in the folder of its kind, with a strict described schema", async () => {
  const refs = new Set<string>();
  for (const stage of await Promise.all(Object.values(stageLoaders).map((load) => load()))) {
    const ref = stageRef(stage);
    assert.ok(!refs.has(ref), `${ref} registered twice`);
    refs.add(ref);
    assert.ok(STAGE_KINDS.includes(stage.kind));
    assert.ok(stage.summary.length > 10, `${ref} needs a summary`);
    const folder = stage.kind.replace("-", "_");
    const file = join(here, folder, `${stage.name}.ts`);
    const text = await Deno.readTextFile(file);
    assert.match(text, /export const stage = defineStage\(/, `${file} exports its definition`);
    // Unknown keys are errors: the schema must be strict.
    const parsed = stage.config.safeParse({ definitelyNotAKey: 1 });
    assert.ok(!parsed.success);
    assert.ok(
      parsed.error.issues.some((i) => i.code === "unrecognized_keys"),
      `${ref} must reject unknown keys`,
    );
    for (const [field, schema] of Object.entries(stage.config.shape)) {
      assert.ok(
        (schema as { description?: string }).description,
        `${ref}.${field} needs .describe()`,
      );
    }
  }
});

Deno.test("each loader gives the stage of its reference; a registry loads only what is asked", async () => {
  const registry = new Registry([], stageLoaders);
  assert.equal(registry.stages.length, 0);
  assert.equal(registry.refs().length, Object.keys(stageLoaders).length);
  await registry.load(["read.csv", "sync-tickets.sqlite", "not.a-stage"]);
  assert.deepEqual(registry.stages.map(stageRef).sort(), ["read.csv", "sync-tickets.sqlite"]);
  assert.equal(registry.get("transform.map"), undefined);
  await registry.loadAll();
  for (const ref of Object.keys(stageLoaders)) assert.equal(stageRef(registry.get(ref)!), ref);
});
