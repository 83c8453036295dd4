import { STD_CHROMINANCE_QUANT, STD_LUMINANCE_QUANT, scaleQuantTable } from './tables.js';

export interface QualityEstimate {
  /** IJG quality factor 1..100. */
  readonly quality: number;
  /** True when the file's tables are exactly IJG-scaled tables of this quality (clamped or 16-bit). */
  readonly exact: boolean;
}

/**
 * Estimate the IJG quality factor from a file's luma (and chroma, if any) quantisation tables. Exact when the
 * tables equal libjpeg's scaled tables for some quality (several qualities can share tables at the extremes;
 * the lowest is reported); otherwise the quality whose tables are closest in mean |log ratio|.
 */
export function estimateQuality(luma: Uint16Array, chroma?: Uint16Array): QualityEstimate {
  let best = { quality: 50, exact: false };
  let bestError = Infinity;
  for (let q = 1; q <= 100; q++) {
    for (const forceBaseline of [true, false]) {
      const l = scaleQuantTable(STD_LUMINANCE_QUANT, q, forceBaseline);
      const c = chroma ? scaleQuantTable(STD_CHROMINANCE_QUANT, q, forceBaseline) : undefined;
      let error = logDistance(luma, l);
      if (chroma && c) error += logDistance(chroma, c);
      if (error === 0) return { quality: q, exact: true };
      if (error < bestError) {
        bestError = error;
        best = { quality: q, exact: false };
      }
    }
  }
  return best;
}

function logDistance(a: Uint16Array, b: Uint16Array): number {
  let e = 0;
  for (let i = 0; i < 64; i++) e += Math.abs(Math.log(Math.max(1, a[i]) / b[i]));
  return e;
}

/** EXIF orientation (1..8) from an APP1 payload, or undefined when absent or unreadable. Never throws. */
export function exifOrientation(app1: Uint8Array): number | undefined {
  // "Exif\0\0" then a TIFF header.
  if (app1.length < 14 || String.fromCharCode(...app1.subarray(0, 4)) !== 'Exif' || app1[4] !== 0 || app1[5] !== 0) {
    return undefined;
  }
  const tiff = app1.subarray(6);
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return undefined;
  const u16 = (o: number) => (little ? tiff[o] | (tiff[o + 1] << 8) : (tiff[o] << 8) | tiff[o + 1]);
  const u32 = (o: number) => (little ? u16(o) + u16(o + 2) * 65536 : u16(o) * 65536 + u16(o + 2));
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return undefined;
  const entries = u16(ifd);
  for (let i = 0; i < entries; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > tiff.length) return undefined;
    if (u16(e) === 0x0112 && u16(e + 2) === 3) {
      const v = u16(e + 8);
      return v >= 1 && v <= 8 ? v : undefined;
    }
  }
  return undefined;
}
