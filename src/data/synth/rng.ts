// Per-image PRNG streams of the synthetic set: a hash of (seed, split, class, index) seeds mulberry32.
import { mulberry32 } from '../../util/random';

/** 32-bit integer hash (murmur3 finaliser). */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function imageSeed(seed: number, split: number, cls: number, index: number): number {
  let h = mix32(seed ^ 0x9e3779b9);
  h = mix32(h ^ Math.imul(split + 1, 0x85ebca6b));
  h = mix32(h ^ Math.imul(cls + 1, 0xc2b2ae35));
  h = mix32(h ^ Math.imul(index + 1, 0x27d4eb2f));
  return mix32((h + index) >>> 0);
}

/** A mulberry32 stream with a few helpers. No transcendental functions in the draws. */
export class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  int(lo: number, hiInclusive: number): number {
    return lo + Math.floor(this.next() * (hiInclusive - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** Zero-mean, unit-variance triangular variate (cheap noise). */
  tri(): number {
    return (this.next() + this.next() - 1) * 2.449489742783178;
  }
  /** Approximately standard normal (Irwin-Hall, 4 uniforms). */
  normal(): number {
    return (this.next() + this.next() + this.next() + this.next() - 2) * 1.7320508075688772;
  }
  pick<T>(items: readonly T[], weights: readonly number[]): T {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.next() * total;
    for (let i = 0; i < items.length; i++) {
      x -= weights[i];
      if (x < 0) return items[i];
    }
    return items[items.length - 1];
  }
}
