/**
 * Colour conversion exactly as libjpeg (jccolor.c / jdcolor.c): 16-bit fixed point.
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

/**
 * Encoder conversion (jccolor.c rgb_ycc_convert). libjpeg's tables hold exactly FIX(c)·i, so the products below
 * are the same integers; multiplying is cheaper than nine table reads per pixel.
 */
const Y_R = fix(0.299), Y_G = fix(0.587), Y_B = fix(0.114);
const CB_R = fix(0.16874), CB_G_ = fix(0.33126), C_HALF = fix(0.5), CR_G_ = fix(0.41869), CR_B = fix(0.08131);
const CBCR_ROUND = CBCR_OFFSET + ONE_HALF - 1;

export function rgbToY(r: number, g: number, b: number): number {
  return (Math.imul(Y_R, r) + Math.imul(Y_G, g) + Math.imul(Y_B, b) + ONE_HALF) >> SCALEBITS;
}
export function rgbToCb(r: number, g: number, b: number): number {
  return (Math.imul(C_HALF, b) - Math.imul(CB_R, r) - Math.imul(CB_G_, g) + CBCR_ROUND) >> SCALEBITS;
}
export function rgbToCr(r: number, g: number, b: number): number {
  return (Math.imul(C_HALF, r) - Math.imul(CR_G_, g) - Math.imul(CR_B, b) + CBCR_ROUND) >> SCALEBITS;
}

/** Decoder tables (jdcolor.c build_ycc_rgb_table). */
export const CR_R = table((i) => (fix(1.402) * (i - 128) + ONE_HALF) >> SCALEBITS);
export const CB_B = table((i) => (fix(1.772) * (i - 128) + ONE_HALF) >> SCALEBITS);
export const CR_G = table((i) => -fix(0.71414) * (i - 128));
export const CB_G = table((i) => -fix(0.34414) * (i - 128) + ONE_HALF);
