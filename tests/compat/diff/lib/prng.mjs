// Small deterministic PRNG (sfc32 seeded by the cyrb128 string hash). Same seed, same stream,
// on every machine and Node version: the whole workload is derived from it.

function cyrb128(str) {
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

export class Prng {
  constructor(seed) {
    [this.a, this.b, this.c, this.d] = cyrb128(String(seed));
    for (let i = 0; i < 16; i++) this.u32(); // warm up
  }

  /** Uniform 32-bit unsigned integer (sfc32). */
  u32() {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Integer in [0, n). */
  int(n) {
    return Math.floor((this.u32() / 2 ** 32) * n);
  }

  /** Integer in [lo, hi] (inclusive). */
  range(lo, hi) {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p) {
    return this.u32() / 2 ** 32 < p;
  }

  pick(items) {
    return items[this.int(items.length)];
  }

  /** Picks from [[weight, value], ...]. */
  weighted(table) {
    const total = table.reduce((sum, [w]) => sum + w, 0);
    let r = this.int(total);
    for (const [w, value] of table) {
      if (r < w) return value;
      r -= w;
    }
    return table[table.length - 1][1];
  }

  /** `n` random bytes as 0x-hex. */
  hex(n) {
    let out = '0x';
    for (let i = 0; i < n; i++) out += this.int(256).toString(16).padStart(2, '0');
    return out;
  }

  /** Random unsigned BigInt below 2^bits. */
  bigint(bits) {
    let v = 0n;
    for (let i = 0; i < bits; i += 32) v = (v << 32n) | BigInt(this.u32());
    return v & ((1n << BigInt(bits)) - 1n);
  }
}
