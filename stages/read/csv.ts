/**
 * `read.csv`: records from a CSV file, streamed, one per row keyed by column
 * name. Values stay strings (typing is `transform.map`'s job). A row with the
 * wrong number of columns goes to the dead-letter store with its line.
 * @module
 */
import { z } from "zod";
import { checkCsvOptions, csvItems, csvOptionsSchema } from "../../lib/csv.ts";
import { fileReader } from "../../lib/source.ts";
import { defineStage } from "../../lib/stage.ts";

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
  }).strict().superRefine(checkCsvOptions),
  create(config, ctx) {
    const { path, ...csv } = config;
    return fileReader(path, ctx, function parseCsv(stream, source, onInvalid) {
      return csvItems(stream, { ...csv, source, onInvalid, signal: ctx.signal });
    });
  },
});
