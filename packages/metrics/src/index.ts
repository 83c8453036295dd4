// Full-reference image-quality metrics on 8-bit images, in plain TypeScript (no TF.js, Node or browser).
// Memory stays bounded for any image size: PSNR streams over the pixels, SSIM runs over strips of rows.
// Bad arguments throw RangeError.

/** Interleaved 8-bit pixels, row-major (the shape of @codiff/jpeg-codec's RawImage). RGBA's alpha is ignored. */
export interface Image8 {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3 | 4;
  readonly data: Uint8Array | Uint8ClampedArray;
}

export interface MetricOptions {
  /**
   * `y`: luma of ITU-R BT.601 YCbCr in [16, 235], Y = 16 + (65.481·R + 128.553·G + 24.966·B)/255, unrounded — as
   * scikit-image and BasicSR compute it for restoration papers. `y8`: the same rounded to an integer, as MATLAB's
   * rgb2ycbcr returns it for uint8 images (the tables of the JPEG-artifact literature). `rgb`: all three channels.
   * Grey images are used as they are either way.
   */
  readonly on?: 'y' | 'y8' | 'rgb';
  /** Pixels dropped from every border before measuring (papers crop the scale or 8 for JPEG). Default 0. */
  readonly crop?: number;
}

/** The measured region: its size after cropping and how many channels are measured. */
interface Region {
  readonly width: number;
  readonly height: number;
  /** Measured channels: 1 (grey or Y) or 3 (RGB). */
  readonly count: number;
  /** Round Y to an integer (`on: 'y8'`). */
  readonly roundY: boolean;
}

/** BT.601 luma of the RGB pixel at byte `i`, studio range, unrounded. */
const bt601Luma = (data: Image8['data'], i: number) => 16 + (65.481 * data[i] + 128.553 * data[i + 1] + 24.966 * data[i + 2]) / 255;
const lumaAt = (data: Image8['data'], i: number, round: boolean) => (round ? Math.round(bt601Luma(data, i)) : bt601Luma(data, i));

function region(image: Image8, options: MetricOptions, what: string): Region {
  const { width, height, channels, data } = image;
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new RangeError(`${what}: channels must be 1, 3 or 4, got ${String(channels)}`);
  if (data.length !== width * height * channels) {
    throw new RangeError(`${what}: ${data.length} bytes do not hold ${width}×${height}×${channels}`);
  }
  const crop = options.crop ?? 0;
  if (!Number.isInteger(crop) || crop < 0) throw new RangeError(`crop must be a non-negative integer, got ${crop}`);
  const w = width - 2 * crop;
  const h = height - 2 * crop;
  if (w < 1 || h < 1) throw new RangeError(`${what}: cropping ${crop} pixels per border leaves nothing of ${width}×${height}`);
  const on = options.on ?? 'y';
  if (on !== 'y' && on !== 'y8' && on !== 'rgb') throw new RangeError(`on must be 'y', 'y8' or 'rgb', got ${String(on)}`);
  return { width: w, height: h, count: channels === 1 || on !== 'rgb' ? 1 : 3, roundY: on === 'y8' };
}

function regions(reference: Image8, test: Image8, options: MetricOptions): [Region, Region] {
  if (reference.width !== test.width || reference.height !== test.height) {
    throw new RangeError(`image sizes differ: ${reference.width}×${reference.height} vs ${test.width}×${test.height}`);
  }
  if ((reference.channels === 1) !== (test.channels === 1)) throw new RangeError('one image is grey and the other colour');
  return [region(reference, options, 'reference'), region(test, options, 'test image')];
}

/** Peak signal-to-noise ratio in dB for 8-bit data (peak 255); Infinity for identical images. */
export function psnr(reference: Image8, test: Image8, options: MetricOptions = {}): number {
  const [a, b] = regions(reference, test, options);
  const crop = options.crop ?? 0;
  const luma = a.count === 1 && reference.channels !== 1;
  let se = 0;
  for (let y = 0; y < a.height; y++) {
    const ca = reference.channels;
    const cb = test.channels;
    let ia = ((y + crop) * reference.width + crop) * ca;
    let ib = ((y + crop) * test.width + crop) * cb;
    const da = reference.data;
    const db = test.data;
    for (let x = 0; x < a.width; x++, ia += ca, ib += cb) {
      if (luma) se += (lumaAt(da, ia, a.roundY) - lumaAt(db, ib, a.roundY)) ** 2;
      else for (let c = 0; c < a.count; c++) se += (da[ia + c] - db[ib + c]) ** 2;
    }
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * a.count * a.width * a.height) / se);
}

const SSIM_SIGMA = 1.5;
const SSIM_RADIUS = 5; // an 11×11 window, scikit-image's truncate 3.5·σ rounded
const K1 = 0.01;
const K2 = 0.03;
/** Output rows of SSIM computed at once: memory is about 130 bytes × width × this, whatever the height. */
const SSIM_STRIP = 128;

/** The normalised 1D Gaussian, exp(−x²/2σ²), x = −5…5. */
const GAUSSIAN = (() => {
  const g = Array.from({ length: 2 * SSIM_RADIUS + 1 }, (_, i) => Math.exp(-((i - SSIM_RADIUS) ** 2) / (2 * SSIM_SIGMA ** 2)));
  const sum = g.reduce((s, v) => s + v, 0);
  return Float64Array.from(g, (v) => v / sum);
})();

/**
 * Separable Gaussian filter over the positions where the whole window fits ("valid"). The window is symmetric,
 * so each pass pairs the taps at equal distance from the centre (6 products instead of 11).
 */
function blurValid(data: Float64Array, width: number, height: number): Float64Array {
  const k = GAUSSIAN.length;
  const w = width - k + 1;
  const h = height - k + 1;
  const rows = new Float64Array(height * w);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * width + x;
      let s = GAUSSIAN[SSIM_RADIUS] * data[i + SSIM_RADIUS];
      for (let t = 0; t < SSIM_RADIUS; t++) s += GAUSSIAN[t] * (data[i + t] + data[i + k - 1 - t]);
      rows[y * w + x] = s;
    }
  }
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      let s = GAUSSIAN[SSIM_RADIUS] * rows[i + SSIM_RADIUS * w];
      for (let t = 0; t < SSIM_RADIUS; t++) s += GAUSSIAN[t] * (rows[i + t * w] + rows[i + (k - 1 - t) * w]);
      out[i] = s;
    }
  }
  return out;
}

/** One channel (grey, Y or R/G/B) of `rows` rows of the region from row `y0`, as float64. */
function channelRows(image: Image8, options: MetricOptions, region: Region, c: number, y0: number, rows: number): Float64Array {
  const crop = options.crop ?? 0;
  const { channels, data, width } = image;
  const out = new Float64Array(region.width * rows);
  const luma = region.count === 1 && channels !== 1;
  for (let y = 0; y < rows; y++) {
    let i = ((y0 + y + crop) * width + crop) * channels + (luma ? 0 : c);
    const o = y * region.width;
    for (let x = 0; x < region.width; x++, i += channels) {
      out[o + x] = luma ? lumaAt(data, i, region.roundY) : data[i];
    }
  }
  return out;
}

/** Sum of the SSIM map of channel `c` over the output rows whose windows start at region rows y0 … y1−1. */
function ssimStripSum(reference: Image8, test: Image8, options: MetricOptions, region: Region, c: number, y0: number, y1: number): number {
  const { width } = region;
  const rows = y1 - y0 + GAUSSIAN.length - 1;
  const a = channelRows(reference, options, region, c, y0, rows);
  const b = channelRows(test, options, region, c, y0, rows);
  const aa = new Float64Array(a.length);
  const bb = new Float64Array(a.length);
  const ab = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    aa[i] = a[i] * a[i];
    bb[i] = b[i] * b[i];
    ab[i] = a[i] * b[i];
  }
  const [muA, muB, sAA, sBB, sAB] = [a, b, aa, bb, ab].map((p) => blurValid(p, width, rows));
  const c1 = (K1 * 255) ** 2;
  const c2 = (K2 * 255) ** 2;
  let sum = 0;
  for (let i = 0; i < muA.length; i++) {
    const varA = sAA[i] - muA[i] * muA[i];
    const varB = sBB[i] - muB[i] * muB[i];
    const cov = sAB[i] - muA[i] * muB[i];
    sum += ((2 * muA[i] * muB[i] + c1) * (2 * cov + c2)) / ((muA[i] ** 2 + muB[i] ** 2 + c1) * (varA + varB + c2));
  }
  return sum;
}

/**
 * Structural similarity (Wang et al. 2004): Gaussian 11×11 window with σ = 1.5, K1 = 0.01, K2 = 0.03, peak 255,
 * population (co)variances, averaged over the positions where the window fits — scikit-image's
 * `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)`. On Y by
 * default; on RGB, the mean over channels. Needs at least 11×11 pixels after cropping.
 */
export function ssim(reference: Image8, test: Image8, options: MetricOptions = {}): number {
  const [a, b] = regions(reference, test, options);
  const k = GAUSSIAN.length;
  if (a.width < k || a.height < k) {
    throw new RangeError(`SSIM needs at least ${k}×${k} pixels after cropping, got ${a.width}×${a.height}`);
  }
  const outRows = a.height - k + 1;
  let total = 0;
  for (let c = 0; c < a.count; c++) {
    for (let y0 = 0; y0 < outRows; y0 += SSIM_STRIP) total += ssimStripSum(reference, test, options, a, c, y0, Math.min(outRows, y0 + SSIM_STRIP));
  }
  return total / (a.count * outRows * (a.width - k + 1));
}

/**
 * Blocking effect factor of the test image's measured channel (Yim & Bovik 2011): η·(D_B − D_B^c) when positive,
 * where D_B is the mean squared difference of horizontally and vertically adjacent pixels across 8×8 block
 * boundaries (between columns/rows 8k−1 and 8k), D_B^c the same over all other adjacent pairs, and
 * η = log2(8) / log2(min(H, W)).
 */
function blockingEffect(image: Image8, options: MetricOptions, region: Region, c: number): number {
  const { width: w, height: h } = region;
  let boundary = 0;
  let boundaryPairs = 0;
  let inner = 0;
  let innerPairs = 0;
  let above: Float64Array | undefined;
  for (let y = 0; y < h; y++) {
    const row = channelRows(image, options, region, c, y, 1);
    for (let x = 0; x + 1 < w; x++) {
      const d = (row[x] - row[x + 1]) ** 2;
      if (x % 8 === 7) (boundary += d), boundaryPairs++;
      else (inner += d), innerPairs++;
    }
    if (above) {
      const acrossBoundary = (y - 1) % 8 === 7;
      for (let x = 0; x < w; x++) {
        const d = (above[x] - row[x]) ** 2;
        if (acrossBoundary) (boundary += d), boundaryPairs++;
        else (inner += d), innerPairs++;
      }
    }
    above = row;
  }
  if (boundaryPairs === 0 || innerPairs === 0) return 0;
  const excess = boundary / boundaryPairs - inner / innerPairs;
  return excess > 0 ? (Math.log2(8) / Math.log2(Math.min(w, h))) * excess : 0;
}

/**
 * PSNR-B (Yim & Bovik, "Quality Assessment of Deblocked Images", IEEE TIP 20(1), 2011): PSNR with the test image's
 * blocking effect factor added to the MSE, 10·log10(255² / (MSE + BEF)), per measured channel and averaged over
 * channels as the literature does on Y (default) or grey. The 8×8 grid starts at the (cropped) top-left pixel.
 */
export function psnrB(reference: Image8, test: Image8, options: MetricOptions = {}): number {
  const [a, b] = regions(reference, test, options);
  let total = 0;
  for (let c = 0; c < a.count; c++) {
    let se = 0;
    for (let y = 0; y < a.height; y++) {
      const ra = channelRows(reference, options, a, c, y, 1);
      const rb = channelRows(test, options, b, c, y, 1);
      for (let x = 0; x < a.width; x++) se += (ra[x] - rb[x]) ** 2;
    }
    const mseB = se / (a.width * a.height) + blockingEffect(test, options, b, c);
    total += mseB === 0 ? Infinity : 10 * Math.log10((255 * 255) / mseB);
  }
  return total / a.count;
}
