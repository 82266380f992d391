/**
 * Heap measurements for streaming tests. Importing this module turns on
 * `--expose-gc` for the test process.
 * @module
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

// A full collection before each sample, so the figure is what the reader retains, not
// garbage V8 has not collected yet (which, under --parallel, exceeds 100 MB for a correct reader).
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

/** Heap in use after a full garbage collection. */
export function retainedHeap(): number {
  collectGarbage();
  return Deno.memoryUsage().heapUsed;
}
