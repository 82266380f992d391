/**
 * `read.csv`: records from a CSV file, streamed, one per row keyed by column
 * name. Values stay strings (typing is `transform.map`'s job). A row with the
 * wrong number of columns goes to the dead-letter store with its line.
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../../lib/errors.ts";
import { csvItems, csvOptionsSchema } from "../../lib/csv.ts";
import { openSource, SizeEstimate } from "../../lib/source.ts";
import { defineStage, type Item, type Origin } from "../../lib/stage.ts";

/** The `read.csv` stage. */
export const stage = defineStage({
  kind: "read",
  name: "csv",
  summary: "Stream records from a CSV file (header row, quoting, BOM, CRLF).",
  config: z.object({
    path: z.string().min(1).describe(
      'File to read, e.g. "fixtures/tickets.csv"; relative paths resolve against the working directory',
    ),
    ...csvOptionsSchema.shape,
  }).strict(),
  create(config, ctx) {
    const { path, ...csv } = config;
    if (!csv.header && csv.columns === undefined) {
      throw new ConfigError(`${ctx.stageId}: invalid config`, [
        `columns: required when "header" is false`,
      ]);
    }
    function onInvalid(origin: Origin, reason: string, raw: string): void {
      const invalid: Item = { key: `${origin.source}#${origin.position}`, data: { raw }, origin };
      ctx.deadLetter(invalid, reason);
    }
    let estimate: SizeEstimate | undefined;
    return {
      async *read(): AsyncGenerator<Item> {
        const { source, stream, size } = await openSource(path, ctx.cwd);
        estimate = new SizeEstimate(size);
        const items = csvItems(estimate.counted(stream), {
          ...csv,
          source,
          onInvalid,
          signal: ctx.signal,
        });
        for await (const item of items) {
          estimate.yielded();
          yield item;
        }
      },
      expected: () => estimate?.estimate(),
      estimated: true,
    };
  },
});
