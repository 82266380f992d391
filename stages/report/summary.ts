/**
 * `report.summary`: a human summary of the run (outcomes, filtered, dead
 * letters, duration) plus the most frequent values of chosen fields among the
 * synced records, logged or written to a text/markdown file.
 * @module
 */
import { extname, resolve } from "node:path";
import { z } from "zod";
import { isSynced } from "../../lib/outcome.ts";
import {
  outputTemplateProblems,
  renderOutputPath,
  writeTextAtomic,
} from "../../lib/output_file.ts";
import { formatSummary } from "../../lib/report.ts";
import { defineStage, type RunReport } from "../../lib/stage.ts";
import { ValueCounts } from "../../lib/value_counts.ts";

/** The report stage. */
export const stage = defineStage({
  kind: "report",
  name: "summary",
  summary: "Summarise the run and the most frequent field values; log it or write a text file.",
  config: z.object({
    countBy: z.array(z.string().min(1)).default([]).describe(
      "Dotted field paths whose values are counted among synced records (e.g. event_type, city_name); list values count each element.",
    ),
    top: z.number().int().positive().default(5).describe(
      "How many of the most frequent values to show per countBy field.",
    ),
    output: z.string().min(1).default("log").describe(
      '"log", or the path of a text file (markdown when it ends in .md); may contain {runId}, {date} (UTC, YYYY-MM-DD) and {pipeline}. Not written in plan mode (logged instead).',
    ),
    maxDistinct: z.number().int().positive().default(10_000).describe(
      'Distinct values kept per countBy field; further new values are counted as "(other)".',
    ),
  }).strict().superRefine(function checkOutput(config, ctx) {
    if (config.output === "log") return;
    for (const message of outputTemplateProblems(config.output)) {
      ctx.addIssue({ code: "custom", path: ["output"], message, input: undefined });
    }
  }),
  create(config, ctx) {
    const counts = new ValueCounts(config.countBy, config.maxDistinct);
    return {
      observe(result) {
        if (isSynced(result.outcome)) counts.add(result.item.data);
      },
      async report(run) {
        const markdown = config.output !== "log" && extname(config.output).toLowerCase() === ".md";
        const lines = summaryLines(run, counts, config.top, markdown);
        if (config.output === "log" || ctx.options.mode === "plan") {
          // The engine prints the run summary itself; the log gets only the statistics, a line each.
          for (const line of statisticsLines(counts, config.top)) {
            ctx.log.info("{line}", { line: ctx.redact(line) });
          }
          return;
        }
        const path = resolve(ctx.cwd, renderOutputPath(config.output, run));
        // A summary path that stays the same would otherwise gather a temporary copy per run
        // killed mid-write.
        await writeTextAtomic(path, ctx.redact(lines.join("\n") + "\n"), {
          removeTemporaries: true,
        });
        ctx.log.info("Wrote the run summary to {path}", { path });
      },
    };
  },
});

/** `Top status: "closed" 131, "open" 9`: a line per countBy field. */
function statisticsLines(counts: ValueCounts, top: number): string[] {
  return counts.fields.map((field) => {
    const values = counts.top(field, top);
    const shown = values.length === 0
      ? "(none)"
      : values.map(([value, n]) => `${JSON.stringify(value)} ${n}`).join(", ");
    return `Top ${field}: ${shown}`;
  });
}

/** The summary block: the engine's summary lines, then the top values per field. */
function summaryLines(
  run: RunReport,
  counts: ValueCounts,
  top: number,
  markdown: boolean,
): string[] {
  const facts = formatSummary(run, "records", 0);
  const deadLetters = Object.values(run.deadLettered).reduce((sum, n) => sum + n, 0) +
    run.outcomes.failed;
  if (deadLetters > 0) {
    facts.push(`Dead letters this run: ${deadLetters}, kept in "${run.deadLetterStore}"`);
  }
  const tops = statisticsLines(counts, top);
  if (!markdown) return [...facts, ...tops];
  return [
    `# ${run.mode === "plan" ? "Plan" : "Run"} summary: ${run.pipeline}`,
    "",
    ...facts.map((line) => `- ${line}`),
    ...(tops.length ? ["", "## Most frequent values", "", ...tops.map((line) => `- ${line}`)] : []),
  ];
}
