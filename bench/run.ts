/**
 * `deno task bench [foundation|texas811|inc ...]`: runs the named benchmarks
 * (all when none is named), each a script under bench/<name>/run.ts that
 * prints its own table. Figures are recorded in bench/README.md.
 * @module
 */
const ALL = ["foundation", "texas811", "inc"];
const names = Deno.args.length > 0 ? Deno.args : ALL;
let failed = 0;
for (const name of names) {
  if (!ALL.includes(name)) {
    console.error(`Unknown benchmark "${name}": expected one of ${ALL.join(", ")}`);
    Deno.exit(1);
  }
  console.log(`\n## ${name}\n`);
  const script = new URL(`./${name}/run.ts`, import.meta.url).pathname;
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) failed++;
}
Deno.exit(failed > 0 ? 1 : 0);
