/**
 * `read.json`: records from a JSON file, streamed: the elements of an array
 * (top-level, or at a dotted path such as `data.tickets`) or JSON Lines.
 * Records that are not objects, array elements and JSON Lines that do not
 * parse go to the dead-letter store with their line; only an array whose
 * structure breaks (a stray separator, a truncated file) stops the run after
 * the records before it.
 * @module
 */
import { z } from "zod";
import { jsonItems } from "../../lib/json_stream.ts";
import { fileReader } from "../../lib/source.ts";
import { defineStage } from "../../lib/stage.ts";

/** The `read.json` stage. */
export const stage = defineStage({
  kind: "read",
  name: "json",
  summary: "Stream records from a JSON array (top-level or at a path) or a JSON Lines file.",
  config: z.object({
    path: z.string().min(1).describe(
      'File to read, e.g. "fixtures/texas811/tickets.json"; relative paths resolve against the working directory',
    ),
    format: z.enum(["auto", "array", "lines"]).default("auto").describe(
      'How the file holds records: "array" (elements of a JSON array), "lines" (JSON Lines: one ' +
        'object per line) or "auto" (an array when the file starts with "[", or with "{" and `at` ' +
        "is set; JSON Lines otherwise)",
    ),
    at: z.string().min(1).optional().describe(
      'Dotted path to the array inside the document, e.g. "tickets" or "data.tickets"; the ' +
        "top-level array when absent",
    ),
  }).strict().superRefine(function checkAt(config, ctx) {
    if (config.format === "lines" && config.at !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["at"],
        message: 'only applies to a JSON array: expected no "at" when "format" is "lines"',
        input: undefined,
      });
    }
  }),
  create(config, ctx) {
    return fileReader(config.path, ctx, function parseJson(stream, source, onInvalid) {
      return jsonItems(stream, {
        source,
        format: config.format,
        path: config.at,
        onInvalid,
        signal: ctx.signal,
      });
    });
  },
});
