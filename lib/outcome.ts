/**
 * Rules every sink shares for deciding and combining outcomes.
 * @module
 */
import type { Outcome, RunOptions, SyncResult } from "./stage.ts";

const SYNCED: ReadonlySet<Outcome | null> = new Set(["created", "updated", "unchanged"]);

/** Whether the record's content equals what the last successful run synced. */
export function isUnchanged(result: SyncResult, options: RunOptions): boolean {
  return !options.full &&
    result.previous !== null &&
    result.previous.hash === result.hash &&
    SYNCED.has(result.previous.lastOutcome);
}

/** Whether a sink should act on the result (not already failed or skipped). */
export function isActionable(result: SyncResult): boolean {
  return result.outcome === null || SYNCED.has(result.outcome);
}

const RANK: Record<Outcome, number> = {
  unchanged: 0,
  updated: 1,
  created: 2,
  skipped: 3,
  failed: 4,
};

/**
 * Combines the outcome one sink gave with the next sink's: failure wins, then
 * skip, then created over updated over unchanged. A ticket whose responses
 * changed is "updated" even when the ticket itself was unchanged.
 */
export function mergeOutcome(current: Outcome | null, next: Outcome): Outcome {
  if (current === null) return next;
  return RANK[next] > RANK[current] ? next : current;
}

/** Whether an outcome counts as success for the ledger. */
export function isSynced(outcome: Outcome | null): boolean {
  return SYNCED.has(outcome);
}

/**
 * Whether a sink of child records (responses) has work for this result; a
 * result the ledger shows unchanged is marked `unchanged` here. Only the
 * ledger's hash proves the children are in place: it covers the whole record
 * and is stored once every sink finished it, while a parent the ticket sink
 * found unchanged in its own table may still lack children (a run killed
 * between the two sinks).
 */
export function needsChildSync(result: SyncResult, options: RunOptions): boolean {
  if (!isActionable(result)) return false;
  if (isUnchanged(result, options)) {
    result.outcome = mergeOutcome(result.outcome, "unchanged");
    return false;
  }
  return true;
}
