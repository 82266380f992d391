/**
 * Writes `docs/stages.md` from the stage schemas; with `--check`, fails when
 * the committed file is stale (CI runs that through `deno task check`).
 * @module
 */
import { renderStageDocs } from "../lib/docs.ts";
import { Registry } from "../lib/registry.ts";
import { stageLoaders } from "../stages/mod.ts";

const target = new URL("../docs/stages.md", import.meta.url);
const registry = new Registry([], stageLoaders);
await registry.loadAll();
const rendered = renderStageDocs(registry) + "\n";

if (Deno.args.includes("--check")) {
  let current = "";
  try {
    current = await Deno.readTextFile(target);
  } catch {
    // A missing file is stale too.
  }
  if (current !== rendered) {
    console.error("docs/stages.md is stale: run `deno task docs` and commit it");
    Deno.exit(1);
  }
} else {
  await Deno.mkdir(new URL("../docs/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(target, rendered);
  console.log("Wrote docs/stages.md");
}
