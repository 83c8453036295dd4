/**
 * A small seeded generator (sfc32) with Python's `random` call shapes, so the data pipeline reads like the official
 * one. Streams are derived from (seed, ...keys): sample j of a run draws from `Rng.derive(seed, j)`, which makes
 * every sample a pure function of the seed and its index — prefetching workers, resuming and skipping stay exact.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** An independent stream for (seed, ...keys), each key a non-negative integer. */
  static derive(seed: number, ...keys: number[]): Rng {
    let h = mix(seed >>> 0);
    for (const k of keys) h = mix((h ^ mix(k >>> 0) ^ mix(Math.floor(k / 2 ** 32))) >>> 0);
    return new Rng(h);
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1), as Python's random(). */
  random(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** Uniform integer in [lo, hi], both ends included, as Python's randint. */
  randint(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  choice<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  /** A Fisher–Yates permutation of 0..n−1. */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }

  /** A standard normal draw (Box–Muller). */
  normal(): number {
    const u = 1 - this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
  }
}

/** murmur3's 32-bit finaliser: spreads every input bit over the output. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
