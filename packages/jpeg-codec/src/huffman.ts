import { JpegError } from './errors.js';
import type { HuffmanSpec } from './tables.js';

/** Code and length per symbol, for the encoder (jchuff.c jpeg_make_c_derived_tbl). */
export interface EncodingTable {
  readonly code: Uint16Array; // 256 entries
  readonly length: Uint8Array; // 0 = symbol absent
}

/** Canonical codes of a table in symbol order (Annex C). Throws CORRUPT for an over-subscribed table. */
export function canonicalCodes(spec: HuffmanSpec): { codes: Uint16Array; lengths: Uint8Array } {
  let total = 0;
  for (let l = 0; l < 16; l++) total += spec.bits[l];
  if (total > 256 || total > spec.values.length) throw new JpegError('CORRUPT', 'Huffman table has more codes than symbols');
  const codes = new Uint16Array(total);
  const lengths = new Uint8Array(total);
  let code = 0;
  let p = 0;
  for (let l = 1; l <= 16; l++) {
    for (let i = 0; i < spec.bits[l - 1]; i++) {
      codes[p] = code;
      lengths[p] = l;
      p++;
      code++;
    }
    // A code of length l must fit in l bits; otherwise the table is over-subscribed (libjpeg: JERR_BAD_HUFF_TABLE).
    if (code > 1 << l) throw new JpegError('CORRUPT', 'Huffman table is over-subscribed');
    code <<= 1;
  }
  return { codes, lengths };
}

export function encodingTable(spec: HuffmanSpec): EncodingTable {
  const { codes, lengths } = canonicalCodes(spec);
  const code = new Uint16Array(256);
  const length = new Uint8Array(256);
  for (let i = 0; i < codes.length; i++) {
    code[spec.values[i]] = codes[i];
    length[spec.values[i]] = lengths[i];
  }
  return { code, length };
}

/**
 * Optimal Huffman table for symbol frequencies `freq` (256 entries), limited to 16-bit codes, exactly as
 * libjpeg's jpeg_gen_optimal_table (ties broken towards the larger symbol; pseudo-symbol 256 reserves the
 * all-ones code).
 */
export function optimalTable(freqIn: ArrayLike<number>): HuffmanSpec {
  const MAX_CLEN = 32;
  const freq = new Float64Array(257);
  for (let i = 0; i < 256; i++) freq[i] = freqIn[i];
  freq[256] = 1;
  const codesize = new Int32Array(257);
  const others = new Int32Array(257).fill(-1);
  for (;;) {
    let c1 = -1;
    let v = Infinity;
    for (let i = 0; i <= 256; i++) if (freq[i] && freq[i] <= v) { v = freq[i]; c1 = i; }
    let c2 = -1;
    v = Infinity;
    for (let i = 0; i <= 256; i++) if (freq[i] && freq[i] <= v && i !== c1) { v = freq[i]; c2 = i; }
    if (c2 < 0) break;
    freq[c1] += freq[c2];
    freq[c2] = 0;
    codesize[c1]++;
    while (others[c1] >= 0) { c1 = others[c1]; codesize[c1]++; }
    others[c1] = c2;
    codesize[c2]++;
    while (others[c2] >= 0) { c2 = others[c2]; codesize[c2]++; }
  }
  const bits = new Int32Array(MAX_CLEN + 1);
  for (let i = 0; i <= 256; i++) {
    if (codesize[i]) {
      if (codesize[i] > MAX_CLEN) throw new JpegError('INVALID_ARGUMENT', 'Huffman code length overflow');
      bits[codesize[i]]++;
    }
  }
  // Limit code lengths to 16 (JPEG spec K.2 "Adjust_BITS").
  for (let i = MAX_CLEN; i > 16; i--) {
    while (bits[i] > 0) {
      let j = i - 2;
      while (bits[j] === 0) j--;
      bits[i] -= 2;
      bits[i - 1]++;
      bits[j + 1] += 2;
      bits[j]--;
    }
  }
  let i = 16;
  while (bits[i] === 0) i--;
  bits[i]--; // drop the reserved pseudo-symbol
  const values: number[] = [];
  for (let len = 1; len <= MAX_CLEN; len++) for (let s = 0; s <= 255; s++) if (codesize[s] === len) values.push(s);
  return { bits: new Uint8Array(bits.subarray(1, 17)), values: new Uint8Array(values) };
}
