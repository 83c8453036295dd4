import { JpegError } from './errors.js';
import { canonicalCodes } from './huffman.js';
import type { HuffmanSpec } from './tables.js';

const LOOKAHEAD = 9;

/** Decoder view of a Huffman table: a 9-bit lookahead table plus libjpeg's maxcode/valptr for long codes. */
export interface DecodingTable {
  readonly lookup: Uint16Array; // (length << 8) | symbol, 0 when the code is longer than LOOKAHEAD bits
  readonly maxcode: Int32Array; // per length 1..17, -1 when no codes of that length
  readonly valoffset: Int32Array;
  readonly values: Uint8Array;
  readonly maxSymbol: number;
  /**
   * AC fast path: for a 9-bit lookahead whose code and magnitude bits both fit, (value << 8) | (run << 4) | bits
   * consumed; 0 otherwise.
   */
  readonly fastAc: Int32Array;
}

export function decodingTable(spec: HuffmanSpec): DecodingTable {
  const { codes, lengths } = canonicalCodes(spec);
  const lookup = new Uint16Array(1 << LOOKAHEAD);
  const maxcode = new Int32Array(18).fill(-1);
  const valoffset = new Int32Array(18);
  let p = 0;
  for (let l = 1; l <= 16; l++) {
    const n = spec.bits[l - 1];
    if (n) {
      valoffset[l] = p - codes[p];
      maxcode[l] = codes[p + n - 1];
    }
    p += n;
  }
  maxcode[17] = 0x7fffffff; // sentinel: terminates the slow-path search
  for (let i = 0; i < codes.length; i++) {
    const len = lengths[i];
    if (len > LOOKAHEAD) continue;
    const shift = LOOKAHEAD - len;
    const base = codes[i] << shift;
    for (let j = 0; j < 1 << shift; j++) lookup[base + j] = (len << 8) | spec.values[i];
  }
  const fastAc = new Int32Array(1 << LOOKAHEAD);
  for (let i = 0; i < 1 << LOOKAHEAD; i++) {
    const e = lookup[i];
    if (e === 0) continue;
    const len = e >> 8, run = (e >> 4) & 15, size = e & 15;
    if (size === 0 || len + size > LOOKAHEAD) continue;
    const bits = (i >> (LOOKAHEAD - len - size)) & ((1 << size) - 1);
    const value = extend(bits, size);
    fastAc[i] = (value << 8) | (run << 4) | (len + size);
  }
  const values = spec.values.slice(0, codes.length);
  return { lookup, maxcode, valoffset, values, maxSymbol: Math.max(0, ...values), fastAc };
}

/**
 * JPEG's EXTEND: an s-bit magnitude field whose top bit is clear encodes v − (2^s − 1). Branch-free, since the
 * sign of coefficients is unpredictable.
 */
function extend(v: number, s: number): number {
  return v + (((v >> (s - 1)) - 1) & (1 - (1 << s)));
}

/**
 * MSB-first reader of entropy-coded data: removes 0xFF00 stuffing and stops at markers. Past a marker or the
 * end of data it supplies zero bytes, as libjpeg does, and remembers it so that using them can be reported.
 */
export class BitReader {
  private buf = 0;
  private count = 0;
  private padBytes = 0;
  /** Set when a marker (or the end of data) stopped the reader. */
  stopped = false;

  constructor(
    private readonly data: Uint8Array,
    public pos: number,
  ) {}

  private fill(): void {
    const data = this.data;
    while (this.count <= 24) {
      let byte = 0;
      if (!this.stopped) {
        if (this.pos >= data.length) this.stopped = true;
        else {
          byte = data[this.pos];
          if (byte === 0xff) {
            // Stuffed 0xFF00 is data; fill bytes 0xFF... before a zero are too (libjpeg treats FF FF 00 alike).
            let q = this.pos + 1;
            while (q < data.length && data[q] === 0xff) q++;
            if (q < data.length && data[q] === 0) this.pos = q + 1;
            else {
              this.stopped = true;
              byte = 0;
            }
          } else this.pos++;
        }
      }
      if (this.stopped) this.padBytes++;
      this.buf = (this.buf << 8) | byte;
      this.count += 8;
    }
  }

  /** True when bits past a marker / the end of data have been consumed. */
  get overran(): boolean {
    return this.count < this.padBytes * 8;
  }

  bits(n: number): number {
    if (this.count < n) this.fill();
    this.count -= n;
    return (this.buf >>> this.count) & ((1 << n) - 1);
  }

  bit(): number {
    if (this.count < 1) this.fill();
    this.count--;
    return (this.buf >>> this.count) & 1;
  }

  /** Read `s` bits and sign-extend as a JPEG magnitude category (HUFF_EXTEND). */
  receiveExtend(s: number): number {
    if (s === 0) return 0;
    return extend(this.bits(s), s);
  }

  decode(t: DecodingTable): number {
    if (this.count < 16) this.fill();
    const e = t.lookup[(this.buf >>> (this.count - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)];
    if (e !== 0) {
      this.count -= e >> 8;
      return e & 0xff;
    }
    for (let l = LOOKAHEAD + 1; l <= 17; l++) {
      const code = (this.buf >>> (this.count - l)) & ((1 << l) - 1);
      if (code <= t.maxcode[l]) {
        if (l === 17) break;
        this.count -= l;
        return t.values[t.valoffset[l] + code];
      }
    }
    throw new JpegError('CORRUPT', 'corrupt entropy-coded data: invalid Huffman code');
  }

  /**
   * Decode one sequential (baseline/extended) block into `coefs[o .. o+64)` in natural order and return the new
   * DC predictor. Short AC codes with their magnitude bits come from one lookahead (`fastAc`).
   */
  sequentialBlock(coefs: Int16Array, o: number, dc: DecodingTable, ac: DecodingTable, pred: number, natural: Uint8Array): number {
    pred += this.receiveExtend(this.decode(dc));
    coefs[o] = pred;
    const fast = ac.fastAc;
    for (let k = 1; k < 64; k++) {
      if (this.count < 16) this.fill();
      const f = fast[(this.buf >>> (this.count - LOOKAHEAD)) & 511];
      if (f !== 0) {
        this.count -= f & 15;
        k += (f >> 4) & 15;
        coefs[o + natural[k]] = f >> 8;
        continue;
      }
      const rs = this.decode(ac);
      const size = rs & 15;
      if (size === 0) {
        if (rs !== 0xf0) break;
        k += 15;
        continue;
      }
      k += rs >> 4;
      coefs[o + natural[k]] = this.receiveExtend(size);
    }
    return pred;
  }

  /** Discard buffered bits and move to the next marker, returning its code (0xD0..) or -1 at the end of data. */
  nextMarker(): number {
    this.buf = 0;
    this.count = 0;
    this.padBytes = 0;
    this.stopped = false;
    const data = this.data;
    let p = this.pos;
    for (;;) {
      while (p < data.length && data[p] !== 0xff) p++;
      while (p < data.length && data[p] === 0xff) p++;
      if (p >= data.length) {
        this.pos = data.length;
        return -1;
      }
      if (data[p] !== 0) {
        this.pos = p - 1;
        return data[p];
      }
      p++;
    }
  }
}
