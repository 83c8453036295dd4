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
 * DCTELEM): q = ((|x| + correction) · reciprocal) >> shift. The forward DCT output is scaled by 8, hence q·8.
 */
export interface QuantDivisors {
  readonly reciprocal: Uint32Array;
  readonly correction: Uint32Array;
  readonly shift: Uint8Array;
}

export function quantDivisors(quantNatural: Uint16Array): QuantDivisors {
  const reciprocal = new Uint32Array(64);
  const correction = new Uint32Array(64);
  const shift = new Uint8Array(64);
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
    reciprocal[i] = fq & 0xffff;
    correction[i] = c;
    shift[i] = r;
  }
  return { reciprocal, correction, shift };
}

/**
 * Forward DCT of one 8×8 block of 8-bit samples followed by quantisation; writes coefficients in natural
 * order to `out`. `ws` is a 64-entry scratch buffer.
 */
export function forwardDctQuantize(
  samples: Uint8Array,
  offset: number,
  stride: number,
  divisors: QuantDivisors,
  ws: Int32Array,
  out: Int16Array,
): void {
  // Pass 1: rows, centred samples, results scaled up by 2^PASS1_BITS.
  for (let row = 0; row < 8; row++) {
    const p = offset + row * stride;
    const d0 = samples[p] - 128, d1 = samples[p + 1] - 128, d2 = samples[p + 2] - 128, d3 = samples[p + 3] - 128;
    const d4 = samples[p + 4] - 128, d5 = samples[p + 5] - 128, d6 = samples[p + 6] - 128, d7 = samples[p + 7] - 128;
    const o = row * 8;
    transform1d(d0, d1, d2, d3, d4, d5, d6, d7, ws, o, 1, PASS1_BITS, CONST_BITS - PASS1_BITS, 0);
  }
  // Pass 2: columns; removes the pass-1 scaling, leaves the overall ×8 of ISLOW.
  for (let col = 0; col < 8; col++) {
    transform1d(
      ws[col], ws[col + 8], ws[col + 16], ws[col + 24], ws[col + 32], ws[col + 40], ws[col + 48], ws[col + 56],
      ws, col, 8, 0, CONST_BITS + PASS1_BITS, PASS1_BITS,
    );
  }
  const { reciprocal, correction, shift } = divisors;
  for (let i = 0; i < 64; i++) {
    const x = ws[i];
    // The product is below 2^32, so `>>>` (ToUint32, then shift) is exact.
    if (x < 0) out[i] = -(((-x + correction[i]) * reciprocal[i]) >>> shift[i]);
    else out[i] = ((x + correction[i]) * reciprocal[i]) >>> shift[i];
  }
}

/**
 * One 8-point ISLOW forward transform. Even outputs 0/4 are shifted left by `dcShiftLeft` (pass 1) or
 * descaled by `dcDescale` (pass 2); the rotated outputs are descaled by `acDescale` bits.
 */
function transform1d(
  d0: number, d1: number, d2: number, d3: number, d4: number, d5: number, d6: number, d7: number,
  out: Int32Array, o: number, step: number, dcShiftLeft: number, acDescale: number, dcDescale: number,
): void {
  const tmp0 = d0 + d7, tmp7 = d0 - d7, tmp1 = d1 + d6, tmp6 = d1 - d6;
  const tmp2 = d2 + d5, tmp5 = d2 - d5, tmp3 = d3 + d4, tmp4 = d3 - d4;
  const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
  if (dcDescale === 0) {
    out[o] = (tmp10 + tmp11) << dcShiftLeft;
    out[o + 4 * step] = (tmp10 - tmp11) << dcShiftLeft;
  } else {
    const round = 1 << (dcDescale - 1);
    out[o] = (tmp10 + tmp11 + round) >> dcDescale;
    out[o + 4 * step] = (tmp10 - tmp11 + round) >> dcDescale;
  }
  const round = 1 << (acDescale - 1);
  let z1 = (tmp12 + tmp13) * FIX_0_541196100;
  out[o + 2 * step] = (z1 + tmp13 * FIX_0_765366865 + round) >> acDescale;
  out[o + 6 * step] = (z1 - tmp12 * FIX_1_847759065 + round) >> acDescale;

  z1 = tmp4 + tmp7;
  let z2 = tmp5 + tmp6;
  let z3 = tmp4 + tmp6;
  let z4 = tmp5 + tmp7;
  const z5 = (z3 + z4) * FIX_1_175875602;
  const t4 = tmp4 * FIX_0_298631336, t5 = tmp5 * FIX_2_053119869;
  const t6 = tmp6 * FIX_3_072711026, t7 = tmp7 * FIX_1_501321110;
  z1 *= -FIX_0_899976223;
  z2 *= -FIX_2_562915447;
  z3 = z3 * -FIX_1_961570560 + z5;
  z4 = z4 * -FIX_0_390180644 + z5;
  out[o + 7 * step] = (t4 + z1 + z3 + round) >> acDescale;
  out[o + 5 * step] = (t5 + z2 + z4 + round) >> acDescale;
  out[o + 3 * step] = (t6 + z2 + z3 + round) >> acDescale;
  out[o + step] = (t7 + z1 + z4 + round) >> acDescale;
}

/**
 * libjpeg's post-IDCT range limit: index (x & 1023) for a centred result x. In range it adds 128 and clamps to
 * 0..255; far out of range it wraps exactly as libjpeg's table does (only reachable with corrupt data).
 */
const IDCT_RANGE_LIMIT = (() => {
  const t = new Uint8Array(1024);
  for (let i = 0; i < 1024; i++) {
    if (i < 128) t[i] = i + 128;
    else if (i < 512) t[i] = 255;
    else if (i < 896) t[i] = 0;
    else t[i] = i - 896;
  }
  return t;
})();

/**
 * Dequantise and inverse-DCT one block (`coefs` natural order at `coefOffset`, `quant` natural order) into
 * 8 rows of `out` at `outOffset` with row stride `outStride`. `ws` is a 64-entry scratch buffer.
 * The two passes spell the butterfly out in locals: it is the decoder's hottest loop.
 */
export function inverseDctIslow(
  coefs: Int16Array,
  coefOffset: number,
  quant: Int32Array,
  out: Uint8Array,
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
  const round2 = 1 << (shift - 1);
  const limit = IDCT_RANGE_LIMIT;
  for (let row = 0; row < 8; row++) {
    const w = row * 8;
    const o = outOffset + row * outStride;
    const w1 = ws[w + 1], w2 = ws[w + 2], w3 = ws[w + 3], w4 = ws[w + 4], w5 = ws[w + 5], w6 = ws[w + 6], w7 = ws[w + 7];
    if ((w1 | w2 | w3 | w4 | w5 | w6 | w7) === 0) {
      const v = limit[((ws[w] + (1 << (PASS1_BITS + 2))) >> (PASS1_BITS + 3)) & 1023];
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
    out[o] = limit[((tmp10 + t3) >> shift) & 1023]; out[o + 7] = limit[((tmp10 - t3) >> shift) & 1023];
    out[o + 1] = limit[((tmp11 + t2) >> shift) & 1023]; out[o + 6] = limit[((tmp11 - t2) >> shift) & 1023];
    out[o + 2] = limit[((tmp12 + t1) >> shift) & 1023]; out[o + 5] = limit[((tmp12 - t1) >> shift) & 1023];
    out[o + 3] = limit[((tmp13 + t0) >> shift) & 1023]; out[o + 4] = limit[((tmp13 - t0) >> shift) & 1023];
  }
}
