/**
 * Colour conversion exactly as libjpeg (jccolor.c / jdcolor.c): 16-bit fixed point, per-component lookup
 * tables so the per-pixel work is three table reads and two adds.
 */
const SCALEBITS = 16;
const ONE_HALF = 1 << (SCALEBITS - 1);
const fix = (x: number) => Math.round(x * (1 << SCALEBITS));

function table(f: (i: number) => number): Int32Array {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) t[i] = f(i);
  return t;
}

const CBCR_OFFSET = 128 << SCALEBITS;
/** Encoder tables (jccolor.c rgb_ycc_start); Y = (R_Y[r] + G_Y[g] + B_Y[b]) >> 16, likewise Cb, Cr. */
export const R_Y = table((i) => fix(0.299) * i);
export const G_Y = table((i) => fix(0.587) * i);
export const B_Y = table((i) => fix(0.114) * i + ONE_HALF);
export const R_CB = table((i) => -fix(0.16874) * i);
export const G_CB = table((i) => -fix(0.33126) * i);
// B_CB doubles as R_CR: libjpeg notes the two coefficients are both exactly 0.5.
export const B_CB = table((i) => fix(0.5) * i + CBCR_OFFSET + ONE_HALF - 1);
export const G_CR = table((i) => -fix(0.41869) * i);
export const B_CR = table((i) => -fix(0.08131) * i);

/** Decoder tables (jdcolor.c build_ycc_rgb_table). */
export const CR_R = table((i) => (fix(1.402) * (i - 128) + ONE_HALF) >> SCALEBITS);
export const CB_B = table((i) => (fix(1.772) * (i - 128) + ONE_HALF) >> SCALEBITS);
export const CR_G = table((i) => -fix(0.71414) * (i - 128));
export const CB_G = table((i) => -fix(0.34414) * (i - 128) + ONE_HALF);
