/**
 * libjpeg's "ISLOW" integer DCTs (jfdctint.c / jidctint.c): 13-bit fixed-point constants, 2 extra bits of
 * precision between passes. Bit-exact with libjpeg-turbo's C and SIMD code paths on all valid data.
 */
const CONST_BITS = 13;
const PASS1_BITS = 2;

const FIX_0_298631336 = 2446;
const FIX_0_390180644 = 3196;
const FIX_0_541196100 = 4433;
const FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373;
const FIX_1_175875602 = 9633;
const FIX_1_501321110 = 12299;
const FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069;
const FIX_2_053119869 = 16819;
const FIX_2_562915447 = 20995;
const FIX_3_072711026 = 25172;

/**
 * Quantisation divisors in libjpeg-turbo's reciprocal form (jcdctmgr.c compute_reciprocal with 16-bit
 * DCTELEM): q = ((|x| + correction) · reciprocal) >> shift, where the forward DCT output is scaled by 8, hence
 * divisor q·8. `factor` holds reciprocal · 2^-shift: (|x| + correction) · factor is then exactly the shifted
 * product (all values are exact in a double), and truncating it gives libjpeg-turbo's quotient.
 */
export interface QuantDivisors {
  readonly correction: Float64Array;
  readonly factor: Float64Array;
}

export function quantDivisors(quantNatural: Uint16Array): QuantDivisors {
  const correction = new Float64Array(64);
  const factor = new Float64Array(64);
  for (let i = 0; i < 64; i++) {
    const divisor = quantNatural[i] << 3;
    const b = 31 - Math.clz32(divisor);
    let r = 16 + b;
    let fq = Math.floor(2 ** r / divisor);
    const fr = 2 ** r % divisor;
    let c = divisor >>> 1;
    if (fr === 0) {
      fq >>>= 1;
      r--;
    } else if (fr <= divisor >>> 1) {
      c++;
    } else {
      fq++;
    }
    correction[i] = c;
    factor[i] = (fq & 0xffff) * 2 ** -r;
  }
  return { correction, factor };
}

/**
 * Forward DCT of one 8×8 block of 8-bit samples followed by quantisation; writes coefficients in natural
 * order to `out[outOffset ..]`. `ws` is a 64-entry scratch buffer. Passes are spelled out in locals (encoder
 * hot loop).
 */
export function forwardDctQuantize(
  samples: Uint8Array,
  offset: number,
  stride: number,
  divisors: QuantDivisors,
  ws: Int32Array,
  out: Int16Array,
  outOffset: number,
): void {
  // Pass 1: rows of centred samples; results scaled up by 2^PASS1_BITS.
  const shift1 = CONST_BITS - PASS1_BITS;
  const round1 = 1 << (shift1 - 1);
  for (let row = 0; row < 8; row++) {
    const p = offset + row * stride;
    const d0 = samples[p], d1 = samples[p + 1], d2 = samples[p + 2], d3 = samples[p + 3];
    const d4 = samples[p + 4], d5 = samples[p + 5], d6 = samples[p + 6], d7 = samples[p + 7];
    const tmp0 = d0 + d7, tmp7 = d0 - d7, tmp1 = d1 + d6, tmp6 = d1 - d6;
    const tmp2 = d2 + d5, tmp5 = d2 - d5, tmp3 = d3 + d4, tmp4 = d3 - d4;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    const o = row * 8;
    // Centring the samples (−128 each) changes only the DC sum of the 8: −8·128.
    ws[o] = (tmp10 + tmp11 - 8 * 128) << PASS1_BITS;
    ws[o + 4] = (tmp10 - tmp11) << PASS1_BITS;
    const z1 = Math.imul(tmp12 + tmp13, FIX_0_541196100) + round1;
    ws[o + 2] = (z1 + Math.imul(tmp13, FIX_0_765366865)) >> shift1;
    ws[o + 6] = (z1 - Math.imul(tmp12, FIX_1_847759065)) >> shift1;
    const z5 = Math.imul(tmp4 + tmp6 + tmp5 + tmp7, FIX_1_175875602) + round1;
    const za = Math.imul(tmp4 + tmp7, -FIX_0_899976223);
    const zb = Math.imul(tmp5 + tmp6, -FIX_2_562915447);
    const zc = Math.imul(tmp4 + tmp6, -FIX_1_961570560) + z5;
    const zd = Math.imul(tmp5 + tmp7, -FIX_0_390180644) + z5;
    ws[o + 7] = (Math.imul(tmp4, FIX_0_298631336) + za + zc) >> shift1;
    ws[o + 5] = (Math.imul(tmp5, FIX_2_053119869) + zb + zd) >> shift1;
    ws[o + 3] = (Math.imul(tmp6, FIX_3_072711026) + zb + zc) >> shift1;
    ws[o + 1] = (Math.imul(tmp7, FIX_1_501321110) + za + zd) >> shift1;
  }
  // Pass 2: columns; removes the pass-1 scaling, leaving ISLOW's overall ×8.
  const shift2 = CONST_BITS + PASS1_BITS;
  const round2 = 1 << (shift2 - 1);
  const dcRound = 1 << (PASS1_BITS - 1);
  for (let col = 0; col < 8; col++) {
    const d0 = ws[col], d1 = ws[col + 8], d2 = ws[col + 16], d3 = ws[col + 24];
    const d4 = ws[col + 32], d5 = ws[col + 40], d6 = ws[col + 48], d7 = ws[col + 56];
    const tmp0 = d0 + d7, tmp7 = d0 - d7, tmp1 = d1 + d6, tmp6 = d1 - d6;
    const tmp2 = d2 + d5, tmp5 = d2 - d5, tmp3 = d3 + d4, tmp4 = d3 - d4;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    ws[col] = (tmp10 + tmp11 + dcRound) >> PASS1_BITS;
    ws[col + 32] = (tmp10 - tmp11 + dcRound) >> PASS1_BITS;
    const z1 = Math.imul(tmp12 + tmp13, FIX_0_541196100) + round2;
    ws[col + 16] = (z1 + Math.imul(tmp13, FIX_0_765366865)) >> shift2;
    ws[col + 48] = (z1 - Math.imul(tmp12, FIX_1_847759065)) >> shift2;
    const z5 = Math.imul(tmp4 + tmp6 + tmp5 + tmp7, FIX_1_175875602) + round2;
    const za = Math.imul(tmp4 + tmp7, -FIX_0_899976223);
    const zb = Math.imul(tmp5 + tmp6, -FIX_2_562915447);
    const zc = Math.imul(tmp4 + tmp6, -FIX_1_961570560) + z5;
    const zd = Math.imul(tmp5 + tmp7, -FIX_0_390180644) + z5;
    ws[col + 56] = (Math.imul(tmp4, FIX_0_298631336) + za + zc) >> shift2;
    ws[col + 40] = (Math.imul(tmp5, FIX_2_053119869) + zb + zd) >> shift2;
    ws[col + 24] = (Math.imul(tmp6, FIX_3_072711026) + zb + zc) >> shift2;
    ws[col + 8] = (Math.imul(tmp7, FIX_1_501321110) + za + zd) >> shift2;
  }
  const { correction, factor } = divisors;
  for (let i = 0; i < 64; i++) {
    // Branch-free |x| and sign restore: coefficient signs are unpredictable.
    const x = ws[i];
    const sign = x >> 31;
    const q = ((((x ^ sign) - sign) + correction[i]) * factor[i]) | 0;
    out[outOffset + i] = (q ^ sign) - sign;
  }
}

/**
 * Dequantise and inverse-DCT one block (`coefs` natural order at `coefOffset`, `quant` natural order) into
 * 8 rows of `out` at `outOffset` with row stride `outStride`. `ws` is a 64-entry scratch buffer.
 * Results are saturated to 0..255 by the clamped store, as libjpeg-turbo's SIMD IDCTs (what PIL, OpenCV and
 * djpeg run on x86 and Arm) do; its C fallback's range-limit table differs only for corrupt coefficients.
 * The two passes spell the butterfly out in locals: it is the decoder's hottest loop.
 */
export function inverseDctIslow(
  coefs: Int16Array,
  coefOffset: number,
  quant: Int32Array,
  out: Uint8ClampedArray,
  outOffset: number,
  outStride: number,
  ws: Int32Array,
): void {
  // Pass 1: columns from input into ws, scaled up by 2^PASS1_BITS.
  const round1 = 1 << (CONST_BITS - PASS1_BITS - 1);
  for (let col = 0; col < 8; col++) {
    const c = coefOffset + col;
    const c1 = coefs[c + 8], c2 = coefs[c + 16], c3 = coefs[c + 24], c4 = coefs[c + 32];
    const c5 = coefs[c + 40], c6 = coefs[c + 48], c7 = coefs[c + 56];
    if ((c1 | c2 | c3 | c4 | c5 | c6 | c7) === 0) {
      const dc = (coefs[c] * quant[col]) << PASS1_BITS;
      ws[col] = dc; ws[col + 8] = dc; ws[col + 16] = dc; ws[col + 24] = dc;
      ws[col + 32] = dc; ws[col + 40] = dc; ws[col + 48] = dc; ws[col + 56] = dc;
      continue;
    }
    // Even part.
    const i2 = c2 * quant[col + 16], i6 = c6 * quant[col + 48];
    const z1 = Math.imul(i2 + i6, FIX_0_541196100);
    const tmp2 = z1 - Math.imul(i6, FIX_1_847759065);
    const tmp3 = z1 + Math.imul(i2, FIX_0_765366865);
    const i0 = coefs[c] * quant[col], i4 = c4 * quant[col + 32];
    const tmp0 = ((i0 + i4) << CONST_BITS) + round1;
    const tmp1 = ((i0 - i4) << CONST_BITS) + round1;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    // Odd part.
    const i7 = c7 * quant[col + 56], i5 = c5 * quant[col + 40], i3 = c3 * quant[col + 24], i1 = c1 * quant[col + 8];
    const z5 = Math.imul(i7 + i3 + i5 + i1, FIX_1_175875602);
    const za = Math.imul(i7 + i1, -FIX_0_899976223);
    const zb = Math.imul(i5 + i3, -FIX_2_562915447);
    const zc = Math.imul(i7 + i3, -FIX_1_961570560) + z5;
    const zd = Math.imul(i5 + i1, -FIX_0_390180644) + z5;
    const t0 = Math.imul(i7, FIX_0_298631336) + za + zc;
    const t1 = Math.imul(i5, FIX_2_053119869) + zb + zd;
    const t2 = Math.imul(i3, FIX_3_072711026) + zb + zc;
    const t3 = Math.imul(i1, FIX_1_501321110) + za + zd;
    const shift = CONST_BITS - PASS1_BITS;
    ws[col] = (tmp10 + t3) >> shift; ws[col + 56] = (tmp10 - t3) >> shift;
    ws[col + 8] = (tmp11 + t2) >> shift; ws[col + 48] = (tmp11 - t2) >> shift;
    ws[col + 16] = (tmp12 + t1) >> shift; ws[col + 40] = (tmp12 - t1) >> shift;
    ws[col + 24] = (tmp13 + t0) >> shift; ws[col + 32] = (tmp13 - t0) >> shift;
  }
  // Pass 2: rows; undo PASS1_BITS and the ×8 of the transform, then range-limit.
  const shift = CONST_BITS + PASS1_BITS + 3;
  // Rounding, plus the +128 level shift folded in before the descale.
  const round2 = (1 << (shift - 1)) + (128 << shift);
  for (let row = 0; row < 8; row++) {
    const w = row * 8;
    const o = outOffset + row * outStride;
    const w1 = ws[w + 1], w2 = ws[w + 2], w3 = ws[w + 3], w4 = ws[w + 4], w5 = ws[w + 5], w6 = ws[w + 6], w7 = ws[w + 7];
    if ((w1 | w2 | w3 | w4 | w5 | w6 | w7) === 0) {
      const v = ((ws[w] + (1 << (PASS1_BITS + 2))) >> (PASS1_BITS + 3)) + 128;
      out[o] = v; out[o + 1] = v; out[o + 2] = v; out[o + 3] = v;
      out[o + 4] = v; out[o + 5] = v; out[o + 6] = v; out[o + 7] = v;
      continue;
    }
    const z1 = Math.imul(w2 + w6, FIX_0_541196100);
    const tmp2 = z1 - Math.imul(w6, FIX_1_847759065);
    const tmp3 = z1 + Math.imul(w2, FIX_0_765366865);
    const w0 = ws[w];
    const tmp0 = ((w0 + w4) << CONST_BITS) + round2;
    const tmp1 = ((w0 - w4) << CONST_BITS) + round2;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    const z5 = Math.imul(w7 + w3 + w5 + w1, FIX_1_175875602);
    const za = Math.imul(w7 + w1, -FIX_0_899976223);
    const zb = Math.imul(w5 + w3, -FIX_2_562915447);
    const zc = Math.imul(w7 + w3, -FIX_1_961570560) + z5;
    const zd = Math.imul(w5 + w1, -FIX_0_390180644) + z5;
    const t0 = Math.imul(w7, FIX_0_298631336) + za + zc;
    const t1 = Math.imul(w5, FIX_2_053119869) + zb + zd;
    const t2 = Math.imul(w3, FIX_3_072711026) + zb + zc;
    const t3 = Math.imul(w1, FIX_1_501321110) + za + zd;
    out[o] = (tmp10 + t3) >> shift; out[o + 7] = (tmp10 - t3) >> shift;
    out[o + 1] = (tmp11 + t2) >> shift; out[o + 6] = (tmp11 - t2) >> shift;
    out[o + 2] = (tmp12 + t1) >> shift; out[o + 5] = (tmp12 - t1) >> shift;
    out[o + 3] = (tmp13 + t0) >> shift; out[o + 4] = (tmp13 - t0) >> shift;
  }
}
