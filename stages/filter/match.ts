/**
 * `filter.match`: drops records by declarative rules. Each rule has a name
 * (the drop reason in counters and the summary) and either `keep` (drop what
 * does not match) or `drop` (drop what matches); the first rule that drops a
 * record names its reason.
 * @module
 */
import { z } from "zod";
import { compilePredicate, type PredicateFn, predicateSchema } from "../../lib/predicate.ts";
import { defineStage, type Item } from "../../lib/stage.ts";

const ruleSchema = z.object({
  name: z.string().min(1).describe(
    'Why a record is dropped, e.g. "wrong status" (counted and reported)',
  ),
  keep: predicateSchema.optional().describe(
    "Keep only records matching this predicate; drop the rest",
  ),
  drop: predicateSchema.optional().describe("Drop records matching this predicate"),
}).strict().superRefine(function checkRule(rule, ctx) {
  if ((rule.keep === undefined) === (rule.drop === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: [],
      message: `expected exactly one of "keep" or "drop", got ${
        rule.keep === undefined ? "neither" : "both"
      }`,
      input: undefined,
    });
  }
});

interface CompiledRule {
  name: string;
  drops: (data: Record<string, unknown>) => boolean;
}

function compileRule(
  name: string,
  keep: PredicateFn | undefined,
  drop: PredicateFn | undefined,
): CompiledRule {
  if (keep) {
    return { name, drops: (data) => !keep(data) };
  }
  return { name, drops: drop! };
}

/** The `filter.match` stage. */
export const stage = defineStage({
  kind: "filter",
  name: "match",
  summary: "Drop records by named keep/drop rules on their fields (counted per rule).",
  config: z.object({
    rules: z.array(ruleSchema).min(1).describe(
      "Rules in order; each has a name and exactly one of keep or drop. The first rule that drops a record names its reason",
    ),
  }).strict().superRefine(function checkNames(config, ctx) {
    const seen = new Map<string, number>();
    config.rules.forEach(function checkName(rule, index) {
      const earlier = seen.get(rule.name);
      if (earlier === undefined) {
        seen.set(rule.name, index);
        return;
      }
      ctx.addIssue({
        code: "custom",
        path: ["rules", index, "name"],
        message: `expected a name of its own: ${
          JSON.stringify(rule.name)
        } is already the name of rules[${earlier}]`,
        input: undefined,
      });
    });
  }),
  create(config, ctx) {
    const rules = config.rules.map((rule) =>
      compileRule(
        rule.name,
        rule.keep && compilePredicate(rule.keep),
        rule.drop && compilePredicate(rule.drop),
      )
    );
    return {
      async *process(items: AsyncIterable<Item>): AsyncIterable<Item> {
        for await (const item of items) {
          const dropping = rules.find((rule) => rule.drops(item.data));
          if (dropping) ctx.drop(item, dropping.name);
          else yield item;
        }
      },
    };
  },
});
