/**
 * A compact set of record keys for duplicate detection within one run: 8
 * bytes per key (two independent 32-bit hashes) instead of a JavaScript
 * string in a Set (~130 bytes), so a million keys cost 16 MB, not 130 MB.
 *
 * Being hash-based, it can in theory report a key as seen when it was not;
 * with 64 bits that is about one chance in 10^7 for a million keys.
 * @module
 */

function hash32(text: string, seed: number): number {
  // FNV-1a over UTF-16 code units with a seed, then a murmur3 finaliser for avalanche.
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** An open-addressing hash set of keys, growing at half load. */
export class KeySet {
  #slots: Uint32Array;
  #size = 0;

  constructor(initialCapacity = 1 << 12) {
    let capacity = 1;
    while (capacity < initialCapacity) capacity <<= 1;
    this.#slots = new Uint32Array(capacity * 2);
  }

  /** Keys added so far. */
  get size(): number {
    return this.#size;
  }

  /** Adds `key`; returns false when it was already in the set. */
  add(key: string): boolean {
    const a = (hash32(key, 0) | 1) >>> 0; // never 0: 0 marks an empty slot
    const b = hash32(key, 0x9e3779b9);
    if (!this.#insert(a, b)) return false;
    this.#size++;
    if (this.#size * 2 > this.#slots.length / 2) this.#grow();
    return true;
  }

  #insert(a: number, b: number): boolean {
    const slots = this.#slots;
    const mask = slots.length / 2 - 1;
    let index = (b & mask) >>> 0;
    while (true) {
      const at = index * 2;
      if (slots[at] === 0) {
        slots[at] = a;
        slots[at + 1] = b;
        return true;
      }
      if (slots[at] === a && slots[at + 1] === b) return false;
      index = (index + 1) & mask;
    }
  }

  #grow(): void {
    const old = this.#slots;
    this.#slots = new Uint32Array(old.length * 2);
    for (let at = 0; at < old.length; at += 2) {
      if (old[at] !== 0) this.#insert(old[at], old[at + 1]);
    }
  }
}
