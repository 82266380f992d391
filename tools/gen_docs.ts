/**
 * Writes `docs/stages.md` (the stage reference) and `docs/ticketsync.schema.json`
 * (the config JSON Schema the examples' `$schema` points at) from the stage
 * schemas; with `--check`, fails when a committed file is stale (CI runs that
 * through `deno task check`).
 * @module
 */
import { configJsonSchema, renderStageDocs } from "../lib/docs.ts";
import { Registry } from "../lib/registry.ts";
import { stageLoaders } from "../stages/mod.ts";

const registry = new Registry([], stageLoaders);
await registry.loadAll();
const outputs: [string, string][] = [
  ["stages.md", renderStageDocs(registry) + "\n"],
  ["ticketsync.schema.json", JSON.stringify(configJsonSchema(registry), null, 2) + "\n"],
];

let stale = false;
for (const [name, rendered] of outputs) {
  const target = new URL(`../docs/${name}`, import.meta.url);
  if (Deno.args.includes("--check")) {
    let current = "";
    try {
      current = await Deno.readTextFile(target);
    } catch {
      // A missing file is stale too.
    }
    if (current !== rendered) {
      console.error(`docs/${name} is stale: run \`deno task docs\` and commit it`);
      stale = true;
    }
  } else {
    await Deno.mkdir(new URL("../docs/", import.meta.url), { recursive: true });
    await Deno.writeTextFile(target, rendered);
    console.log(`Wrote docs/${name}`);
  }
}
if (stale) Deno.exit(1);
