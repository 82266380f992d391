/**
 * `report.json`: writes the run report as a JSON file (atomically), for
 * monitoring and for keeping a history of runs. Every string in it passes
 * through the run's redaction.
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import { isSynced } from "../../lib/outcome.ts";
import {
  outputTemplateProblems,
  renderOutputPath,
  writeTextAtomic,
} from "../../lib/output_file.ts";
import { defineStage, type Outcome, OUTCOMES } from "../../lib/stage.ts";

/** Records listed under `failures` at most (the dead-letter store has them all). */
const MAX_FAILURES = 100;

/** The report stage. */
export const stage = defineStage({
  kind: "report",
  name: "json",
  summary:
    "Write the run report (outcomes, filtered, dead letters, stages, failures) to a JSON file.",
  config: z.object({
    path: z.string().min(1).default("./data/reports/{pipeline}-{runId}.json").describe(
      "File to write; may contain {runId}, {date} (UTC, YYYY-MM-DD) and {pipeline}. Relative to the working directory. Not written in plan mode.",
    ),
    pretty: z.boolean().default(true).describe("Indent the JSON for people (false: one line)."),
  }).strict().superRefine(function checkPath(config, ctx) {
    for (const message of outputTemplateProblems(config.path)) {
      ctx.addIssue({ code: "custom", path: ["path"], message, input: undefined });
    }
  }),
  create(config, ctx) {
    const observed: Record<Outcome, number> = {
      created: 0,
      updated: 0,
      unchanged: 0,
      skipped: 0,
      failed: 0,
    };
    const failures: { key: string; source: string; position: string; reason: string }[] = [];
    let synced = 0;

    return {
      observe(result) {
        if (result.outcome !== null) observed[result.outcome]++;
        if (isSynced(result.outcome)) synced++;
        if (result.outcome === "failed" && failures.length < MAX_FAILURES) {
          failures.push({
            key: result.item.key,
            source: result.item.origin.source,
            position: result.item.origin.position,
            reason: result.reason ?? "",
          });
        }
      },
      async report(run) {
        const path = resolve(ctx.cwd, renderOutputPath(config.path, run));
        const document = redactStrings({
          ...run,
          observed: Object.fromEntries(OUTCOMES.map((outcome) => [outcome, observed[outcome]])),
          synced,
          failures,
          failuresTruncated: observed.failed > failures.length,
        }, ctx.redact);
        if (ctx.options.mode === "plan") {
          ctx.log.info("Plan mode: the run report would be written to {path}", { path });
          return;
        }
        const text = JSON.stringify(document, null, config.pretty ? 2 : undefined) + "\n";
        // A report path that stays the same (quickstart-latest.json) would otherwise gather a
        // temporary copy per run killed mid-write.
        await writeTextAtomic(path, text, { removeTemporaries: true });
        ctx.log.info("Wrote the run report to {path}", { path });
      },
    };
  },
});

/** A deep copy of `value` with every string (object keys too) passed through `redact`. */
function redactStrings(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === "string") return redact(value);
  if (Array.isArray(value)) return value.map((child) => redactStrings(child, redact));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, child]) => [redact(key), redactStrings(child, redact)]),
    );
  }
  return value;
}
