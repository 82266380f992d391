/**
 * Progress: a line every N records ("Imported 1000/5000 tickets (20%), 850/s,
 * ETA 5s") and, on a terminal, a live bar redrawn in place.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { setLiveLine } from "./log.ts";

/** Options for {@linkcode Progress}. */
export interface ProgressOptions {
  /** "Imported", "Planned". */
  verb: string;
  /** "tickets". */
  noun: string;
  /** A line every N records. */
  every: number;
  log: Logger;
  /** Draw a live bar (only on a terminal, never with JSON logs). */
  bar: boolean;
  /** Milliseconds clock (tests pin it). */
  now?: () => number;
  /** Where the bar is drawn (default stderr). */
  write?: (text: string) => void;
}

/** `1m05s`, `42s`, `1h02m`. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/** Counts finished records and reports progress. */
export class Progress {
  #done = 0;
  #total: number | undefined;
  #estimated = false;
  #started: number;
  #lastBar = 0;
  readonly #options: ProgressOptions;
  readonly #now: () => number;
  readonly #write: (text: string) => void;

  constructor(options: ProgressOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#write = options.write ??
      ((text) => Deno.stderr.writeSync(new TextEncoder().encode(text)));
    this.#started = this.#now();
    if (options.bar) {
      setLiveLine({ clear: () => this.#clearBar(), redraw: () => this.#drawBar() });
    }
  }

  get done(): number {
    return this.#done;
  }

  /** Sets the expected total when the source knows it (`estimated`: shown as `~N`). */
  setTotal(total: number | undefined, estimated = false): void {
    this.#total = total;
    this.#estimated = estimated;
  }

  /** Records `n` more finished records. */
  tick(n = 1): void {
    const before = this.#done;
    this.#done += n;
    const every = this.#options.every;
    if (Math.floor(before / every) !== Math.floor(this.#done / every)) {
      this.#options.log.info("{line}", { line: this.line() });
    }
    if (this.#options.bar && this.#now() - this.#lastBar > 100) this.#drawBar();
  }

  /** The progress sentence for the current count. */
  line(): string {
    const { verb, noun } = this.#options;
    const elapsed = this.#now() - this.#started;
    const rate = elapsed > 0 ? this.#done / (elapsed / 1000) : 0;
    const rateText = `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)}/s`;
    const total = this.#total;
    if (total !== undefined && total > 0) {
      const percent = Math.min(100, Math.floor((this.#done / total) * 100));
      const eta = rate > 0 ? formatDuration(((total - this.#done) / rate) * 1000) : "?";
      const shown = this.#estimated ? `~${total}` : String(total);
      return `${verb} ${this.#done}/${shown} ${noun} (${percent}%), ${rateText}, ETA ${eta}`;
    }
    return `${verb} ${this.#done} ${noun}, ${rateText}`;
  }

  #drawBar(): void {
    this.#lastBar = this.#now();
    const total = this.#total;
    const width = 30;
    const filled = total ? Math.min(width, Math.round((this.#done / total) * width)) : 0;
    const bar = total ? `[${"#".repeat(filled)}${" ".repeat(width - filled)}] ` : "";
    this.#write(`\r\x1b[2K${bar}${this.line()}`);
  }

  #clearBar(): void {
    this.#write("\r\x1b[2K");
  }

  /** Removes the live bar. */
  finish(): void {
    if (this.#options.bar) {
      this.#clearBar();
      setLiveLine(null);
    }
  }
}
