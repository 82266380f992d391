/**
 * The run's counters, its accounting check, and the one summary printed at the end.
 * @module
 */
import { type Outcome, OUTCOMES, type RunReport } from "./stage.ts";
import { formatDuration } from "./progress.ts";

/** Items a stage took in and passed on. */
export interface StageCounter {
  in: number;
  out: number;
}

/** Live counters of one run. */
export class RunCounters {
  read = 0;
  readonly filtered = new Map<string, number>();
  readonly deadLettered = new Map<string, number>();
  readonly outcomes: Record<Outcome, number> = {
    created: 0,
    updated: 0,
    unchanged: 0,
    skipped: 0,
    failed: 0,
  };
  readonly stages = new Map<string, StageCounter>();

  /** Counts a drop under `reason` (prefixed with the stage that dropped it). */
  drop(reason: string): void {
    this.filtered.set(reason, (this.filtered.get(reason) ?? 0) + 1);
  }

  /** Counts a dead letter under a short form of its reason. */
  deadLetter(reason: string): void {
    // Group by the part before the first colon-detail so "created_at: expected a date ..., got X" groups per field.
    const group = reason.length > 80 ? `${reason.slice(0, 77)}...` : reason;
    this.deadLettered.set(group, (this.deadLettered.get(group) ?? 0) + 1);
  }

  /** The item counts of stage `id`, created at zero (in pipeline order) on first ask. */
  stage(id: string): StageCounter {
    let counter = this.stages.get(id);
    if (!counter) {
      counter = { in: 0, out: 0 };
      this.stages.set(id, counter);
    }
    return counter;
  }

  total(map: Map<string, number>): number {
    let sum = 0;
    for (const value of map.values()) sum += value;
    return sum;
  }

  /**
   * The accounting invariant: every record read ends in exactly one bucket.
   * Returns a description of the mismatch, or null when the books balance.
   */
  checkBalance(): string | null {
    const filtered = this.total(this.filtered);
    const dead = this.total(this.deadLettered);
    const outcomes = OUTCOMES.reduce((sum, outcome) => sum + this.outcomes[outcome], 0);
    if (this.read === filtered + dead + outcomes) return null;
    return `read ${this.read} != filtered ${filtered} + dead-lettered ${dead} + outcomes ${outcomes} (${
      OUTCOMES.map((o) => `${o} ${this.outcomes[o]}`).join(", ")
    })`;
  }
}

/** Turns counters into the report that report stages and `state runs` see. */
export function buildReport(
  counters: RunCounters,
  fields: Omit<RunReport, "read" | "filtered" | "deadLettered" | "outcomes" | "stages">,
): RunReport {
  return {
    ...fields,
    read: counters.read,
    filtered: Object.fromEntries(counters.filtered),
    deadLettered: Object.fromEntries(counters.deadLettered),
    outcomes: { ...counters.outcomes },
    stages: [...counters.stages].map(([id, c]) => ({ id, in: c.in, out: c.out })),
  };
}

/** The human summary, one line per fact. */
export function formatSummary(report: RunReport, noun: string, openDeadLetters: number): string[] {
  const o = report.outcomes;
  const verb = report.mode === "plan" ? "Plan" : "Run";
  const lines = [
    `${verb} ${report.runId} of "${report.pipeline}" finished in ${
      formatDuration(report.durationMs)
    } with exit code ${report.exitCode}: ${report.read} ${noun} read, ${o.created} created, ${o.updated} updated, ${o.unchanged} unchanged, ${o.skipped} skipped, ${o.failed} failed`,
  ];
  const filtered = Object.entries(report.filtered);
  if (filtered.length > 0) {
    lines.push(
      `Filtered out: ${filtered.map(([reason, n]) => `${n} ${JSON.stringify(reason)}`).join(", ")}`,
    );
  }
  const dead = Object.entries(report.deadLettered);
  if (dead.length > 0) {
    lines.push(
      `Dead-lettered (invalid): ${dead.map(([reason, n]) => `${n} × ${reason}`).join("; ")}`,
    );
  }
  if (openDeadLetters > 0) {
    lines.push(
      `${openDeadLetters} open dead letters in "${report.deadLetterStore}": see \`ticketsync state CONFIG deadletters\`, retry with \`ticketsync replay CONFIG\``,
    );
  }
  if (report.error) lines.push(`Stopped: ${report.error}`);
  return lines;
}
