// No TF.js here: `@codiff/losses/metrics` loads this alone. Bad arguments throw RangeError.

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
   * MATLAB's rgb2ycbcr, scikit-image and BasicSR compute it for restoration papers. `rgb`: all three channels.
   * Grey images are used as they are either way.
   */
  readonly on?: 'y' | 'rgb';
  /** Pixels dropped from every border before measuring (papers crop the scale or 8 for JPEG). Default 0. */
  readonly crop?: number;
}

/** A channel of an image as float64, after cropping. */
interface Plane {
  readonly width: number;
  readonly height: number;
  readonly data: Float64Array;
}

function planes(image: Image8, options: MetricOptions, what: string): Plane[] {
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
  const luma = channels === 1 || (options.on ?? 'y') === 'y';
  const count = luma ? 1 : 3;
  const out = Array.from({ length: count }, () => new Float64Array(w * h));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const src = ((y + crop) * width + x + crop) * channels;
      const dst = y * w + x;
      if (channels === 1) out[0][dst] = data[src];
      else if (luma) out[0][dst] = 16 + (65.481 * data[src] + 128.553 * data[src + 1] + 24.966 * data[src + 2]) / 255;
      else for (let c = 0; c < 3; c++) out[c][dst] = data[src + c];
    }
  }
  return out.map((d) => ({ width: w, height: h, data: d }));
}

function pairPlanes(reference: Image8, test: Image8, options: MetricOptions): [Plane[], Plane[]] {
  if (reference.width !== test.width || reference.height !== test.height) {
    throw new RangeError(`image sizes differ: ${reference.width}×${reference.height} vs ${test.width}×${test.height}`);
  }
  if ((reference.channels === 1) !== (test.channels === 1)) throw new RangeError('one image is grey and the other colour');
  return [planes(reference, options, 'reference'), planes(test, options, 'test image')];
}

/** Peak signal-to-noise ratio in dB for 8-bit data (peak 255); Infinity for identical images. */
export function psnr(reference: Image8, test: Image8, options: MetricOptions = {}): number {
  const [a, b] = pairPlanes(reference, test, options);
  let se = 0;
  let n = 0;
  a.forEach((p, c) => {
    for (let i = 0; i < p.data.length; i++) se += (p.data[i] - b[c].data[i]) ** 2;
    n += p.data.length;
  });
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * n) / se);
}

const SSIM_SIGMA = 1.5;
const SSIM_RADIUS = 5; // an 11×11 window, scikit-image's truncate 3.5·σ rounded
const K1 = 0.01;
const K2 = 0.03;

/** The normalised 1D Gaussian, exp(−x²/2σ²), x = −5…5. */
const GAUSSIAN = (() => {
  const g = Array.from({ length: 2 * SSIM_RADIUS + 1 }, (_, i) => Math.exp(-((i - SSIM_RADIUS) ** 2) / (2 * SSIM_SIGMA ** 2)));
  const sum = g.reduce((s, v) => s + v, 0);
  return Float64Array.from(g, (v) => v / sum);
})();

/** Separable Gaussian filter over the positions where the whole window fits ("valid"). */
function blurValid(data: Float64Array, width: number, height: number): Float64Array {
  const k = GAUSSIAN.length;
  const w = width - k + 1;
  const h = height - k + 1;
  const rows = new Float64Array(height * w);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += GAUSSIAN[t] * data[y * width + x + t];
      rows[y * w + x] = s;
    }
  }
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += GAUSSIAN[t] * rows[(y + t) * w + x];
      out[y * w + x] = s;
    }
  }
  return out;
}

function ssimPlane(a: Plane, b: Plane): number {
  const { width, height } = a;
  const n = width * height;
  const products = [a.data, b.data, new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  for (let i = 0; i < n; i++) {
    products[2][i] = a.data[i] * a.data[i];
    products[3][i] = b.data[i] * b.data[i];
    products[4][i] = a.data[i] * b.data[i];
  }
  const [muA, muB, aa, bb, ab] = products.map((p) => blurValid(p, width, height));
  const c1 = (K1 * 255) ** 2;
  const c2 = (K2 * 255) ** 2;
  let sum = 0;
  for (let i = 0; i < muA.length; i++) {
    const varA = aa[i] - muA[i] * muA[i];
    const varB = bb[i] - muB[i] * muB[i];
    const cov = ab[i] - muA[i] * muB[i];
    sum += ((2 * muA[i] * muB[i] + c1) * (2 * cov + c2)) / ((muA[i] ** 2 + muB[i] ** 2 + c1) * (varA + varB + c2));
  }
  return sum / muA.length;
}

/**
 * Structural similarity (Wang et al. 2004): Gaussian 11×11 window with σ = 1.5, K1 = 0.01, K2 = 0.03, peak 255,
 * population (co)variances, averaged over the positions where the window fits — scikit-image's
 * `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)`. On Y by
 * default; on RGB, the mean over channels. Needs at least 11×11 pixels after cropping.
 */
export function ssim(reference: Image8, test: Image8, options: MetricOptions = {}): number {
  const [a, b] = pairPlanes(reference, test, options);
  const { width, height } = a[0];
  if (width < GAUSSIAN.length || height < GAUSSIAN.length) {
    throw new RangeError(`SSIM needs at least ${GAUSSIAN.length}×${GAUSSIAN.length} pixels after cropping, got ${width}×${height}`);
  }
  return a.reduce((s, p, c) => s + ssimPlane(p, b[c]), 0) / a.length;
}
