// codiff-lite's learned luma post-filter, after the block-edge smoothing. Each pixel falls in one of 1,536 classes
// (its place in the JPEG's 8×8 block, the restored luma's local activity and direction), and each class has a linear
// filter of the restored 5×5 and the JPEG's 3×3 luma neighbourhoods plus a bias, fitted by least squares on training
// photos: a Wiener filter in the manner of VVC's adaptive loop filter and RAISR's hashed filters. Its output is a
// luma correction, added equally to every channel; a second stage of the same shape, fitted on the first one's
// outputs, can follow. Pure TypeScript over 8-bit pixels, like the smoothing.
import { bytesSource, SafetensorsFile, writeSafetensors, type ByteSource } from '@codiff/nn';
import { ALIGNED_GRID, checkGrid, luma, type GridPhase } from './deblock.js';
import { PipelineError } from './errors.js';
import type { Pixels } from './restore.js';

/** The file of a model folder that holds the filter (optional: a folder without it restores without the filter). */
export const POST_FILTER_FILE = 'postfilter.safetensors';

/** Written in the file's metadata and checked on reading: the class and feature layout below. */
const FORMAT = 'codiff-luma-post-filter/1';
const BLOCK = 8;
const RESTORED_RADIUS = 2;
const JPEG_RADIUS = 1;
const RESTORED_TAPS = (2 * RESTORED_RADIUS + 1) ** 2;
const JPEG_TAPS = (2 * JPEG_RADIUS + 1) ** 2;
/** 5×5 restored taps, 3×3 JPEG taps, bias. */
export const POST_FILTER_FEATURES = RESTORED_TAPS + JPEG_TAPS + 1;
/**
 * Activity: the mean over 3×3 pixels of |2y − left − right| + |2y − up − down| of the restored luma, in 8 levels
 * split at these values (from flat sky to texture, each about 1.5–2× the last).
 */
const ACTIVITY_EDGES = [1, 2, 4, 7, 11, 17, 26];
const ACTIVITY_LEVELS = ACTIVITY_EDGES.length + 1;
/** Direction: horizontal (or vertical) when its 3×3 sum of second differences is over twice the other's, else none. */
const DIRECTION_RATIO = 2;
const DIRECTIONS = 3;
export const POST_FILTER_CLASSES = BLOCK * BLOCK * ACTIVITY_LEVELS * DIRECTIONS;
const STAGE_WEIGHTS = POST_FILTER_CLASSES * POST_FILTER_FEATURES;
const WEIGHTS = 'weight';

/** A plane with `r` pixels of border that repeat its edge pixels, `w + 2r` wide. */
function padded(plane: Float64Array, w: number, h: number, r: number): Float64Array {
  const pw = w + 2 * r;
  const out = new Float64Array(pw * (h + 2 * r));
  for (let y = -r; y < h + r; y++) {
    const src = (y < 0 ? 0 : y >= h ? h - 1 : y) * w;
    for (let x = -r; x < w + r; x++) out[(y + r) * pw + x + r] = plane[src + (x < 0 ? 0 : x >= w ? w - 1 : x)];
  }
  return out;
}

/** The JPEG's luma padded for its taps: made once per image, since every stage reads the same. */
const paddedJpeg = (jpegLuma: Float64Array, w: number, h: number): Float64Array => padded(jpegLuma, w, h, JPEG_RADIUS);

/** The sum over each pixel's 3×3 neighbourhood (edge pixels repeated beyond the border). */
function boxSum3(plane: Float64Array, w: number, h: number): Float64Array {
  const p = padded(plane, w, h, 1), pw = w + 2;
  const rows = new Float64Array(pw * (h + 2));
  for (let i = 1; i < rows.length - 1; i++) rows[i] = p[i - 1] + p[i] + p[i + 1];
  const out = new Float64Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = rows[y * pw + x + 1] + rows[(y + 1) * pw + x + 1] + rows[(y + 2) * pw + x + 1];
  return out;
}

/**
 * What the filter sees of one image: each pixel's class and its taps. `apply` and the fit both go through here, so
 * the two cannot disagree on what a class or a feature is.
 */
class FilterInput {
  readonly classes: Uint16Array;
  /** The restored luma, padded for its taps. */
  readonly restored: Float64Array;

  /** `jpeg`: `paddedJpeg` of the JPEG's luma. */
  constructor(restoredLuma: Float64Array, readonly jpeg: Float64Array, readonly w: number, h: number, grid: GridPhase) {
    this.restored = padded(restoredLuma, w, h, RESTORED_RADIUS);
    // Second differences along x and y, then their 3×3 sums: activity and direction.
    const secondX = new Float64Array(w * h), secondY = new Float64Array(w * h);
    const pw = w + 2 * RESTORED_RADIUS, r = this.restored;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = (y + RESTORED_RADIUS) * pw + x + RESTORED_RADIUS, c = 2 * r[i];
        secondX[y * w + x] = Math.abs(c - r[i - 1] - r[i + 1]);
        secondY[y * w + x] = Math.abs(c - r[i - pw] - r[i + pw]);
      }
    }
    const [sumX, sumY] = [boxSum3(secondX, w, h), boxSum3(secondY, w, h)];
    this.classes = new Uint16Array(w * h);
    for (let y = 0; y < h; y++) {
      const phaseY = (((y - grid.top) % BLOCK) + BLOCK) % BLOCK;
      for (let x = 0; x < w; x++) {
        const i = y * w + x, sx = sumX[i], sy = sumY[i], activity = (sx + sy) / 9;
        let level = 0;
        while (level < ACTIVITY_EDGES.length && activity >= ACTIVITY_EDGES[level]) level++;
        const direction = sx > DIRECTION_RATIO * sy ? 1 : sy > DIRECTION_RATIO * sx ? 2 : 0;
        const phaseX = (((x - grid.left) % BLOCK) + BLOCK) % BLOCK;
        this.classes[i] = ((phaseY * BLOCK + phaseX) * ACTIVITY_LEVELS + level) * DIRECTIONS + direction;
      }
    }
  }

  /** Where pixel (x, y) is in the padded restored and JPEG planes. */
  centres(x: number, y: number): [number, number] {
    return [(y + RESTORED_RADIUS) * (this.w + 2 * RESTORED_RADIUS) + x + RESTORED_RADIUS, (y + JPEG_RADIUS) * (this.w + 2 * JPEG_RADIUS) + x + JPEG_RADIUS];
  }

  /** The features of pixel (x, y) into `out`: the restored 5×5 and the JPEG's 3×3, row by row, then the bias 1. */
  features(x: number, y: number, out: Float64Array): void {
    const [centreR, centreJ] = this.centres(x, y);
    const rw = this.w + 2 * RESTORED_RADIUS, jw = this.w + 2 * JPEG_RADIUS;
    let k = 0;
    for (let dy = -RESTORED_RADIUS; dy <= RESTORED_RADIUS; dy++) {
      for (let dx = -RESTORED_RADIUS; dx <= RESTORED_RADIUS; dx++) out[k++] = this.restored[centreR + dy * rw + dx];
    }
    for (let dy = -JPEG_RADIUS; dy <= JPEG_RADIUS; dy++) {
      for (let dx = -JPEG_RADIUS; dx <= JPEG_RADIUS; dx++) out[k++] = this.jpeg[centreJ + dy * jw + dx];
    }
    out[k] = 1;
  }
}

function checkPair(a: Pixels, b: Pixels, what: string): void {
  for (const p of [a, b]) {
    if (p.data.length !== p.width * p.height * p.channels) throw new PipelineError(`pixel buffer of ${p.data.length} bytes does not hold ${p.width}×${p.height}×${p.channels}`);
  }
  if (a.width !== b.width || a.height !== b.height || a.channels !== b.channels) {
    throw new PipelineError(`${what} is ${b.width}×${b.height}×${b.channels}, the restored image ${a.width}×${a.height}×${a.channels}`);
  }
}

/**
 * A fitted filter: one row of POST_FILTER_FEATURES weights per class, in one or more stages, each run on the
 * previous one's output (a second stage fitted on the first's outputs takes out part of what the first left).
 */
export class LumaPostFilter {
  readonly stages: number;
  /** Each stage's weights in float64, read by the per-pixel loop. */
  private readonly stageWeights: Float64Array[] = [];

  constructor(
    /** [stages, classes, features], row-major. */
    readonly weights: Float32Array,
    /** How it was fitted (photos, QFs, samples), as the file records it. */
    readonly provenance: Readonly<Record<string, string>> = {},
  ) {
    this.stages = weights.length / STAGE_WEIGHTS;
    if (!Number.isInteger(this.stages) || this.stages < 1) {
      throw new PipelineError(`a luma post-filter has ${POST_FILTER_CLASSES}×${POST_FILTER_FEATURES} weights per stage (got ${weights.length})`);
    }
    for (let stage = 0; stage < this.stages; stage++) this.stageWeights.push(Float64Array.from(weights.subarray(stage * STAGE_WEIGHTS, (stage + 1) * STAGE_WEIGHTS)));
  }

  /** The stages of `filters` in order, as one filter. */
  static cascade(filters: readonly LumaPostFilter[], provenance: Readonly<Record<string, string>> = {}): LumaPostFilter {
    const weights = new Float32Array(filters.reduce((n, f) => n + f.weights.length, 0));
    filters.reduce((at, f) => (weights.set(f.weights, at), at + f.weights.length), 0);
    return new LumaPostFilter(weights, provenance);
  }

  /**
   * The restored image with each pixel's luma correction added to every channel (rounded, clamped to 0..255), stage
   * after stage. `jpeg`: the decoded JPEG the restore started from; `grid`: where its 8×8 grid lies.
   */
  apply(restored: Pixels, jpeg: Pixels, grid: GridPhase = ALIGNED_GRID): Pixels {
    checkPair(restored, jpeg, 'the JPEG');
    checkGrid(grid);
    const jpegPlane = paddedJpeg(luma(jpeg), jpeg.width, jpeg.height);
    return this.stageWeights.reduce((out, weights) => applyStage(weights, out, jpegPlane, grid), restored);
  }

  /** The filter as safetensors: `weight` [stages, classes, features] F32, the layout's version and the provenance in the metadata. */
  toSafetensors(): Uint8Array {
    return writeSafetensors({ [WEIGHTS]: { shape: [this.stages, POST_FILTER_CLASSES, POST_FILTER_FEATURES], data: this.weights } }, { ...this.provenance, format: FORMAT });
  }
}

function applyStage(weights: Float64Array, restored: Pixels, jpegPlane: Float64Array, grid: GridPhase): Pixels {
  const { width: w, height: h, channels } = restored;
  const data = new Uint8Array(restored.data.length);
  const input = new FilterInput(luma(restored), jpegPlane, w, h, grid);
  const { restored: planeR, jpeg: planeJ } = input;
  const rw = w + 2 * RESTORED_RADIUS, jw = w + 2 * JPEG_RADIUS;
  // `features` and a dot product without the copy, reading each tap row contiguously: this loop is the filter's run time.
  for (let y = 0, i = 0; y < h; y++) {
    let [centreR, centreJ] = input.centres(0, y);
    for (let x = 0; x < w; x++, i++, centreR++, centreJ++) {
      let k = input.classes[i] * POST_FILTER_FEATURES;
      let correction = 0;
      for (let dy = -RESTORED_RADIUS; dy <= RESTORED_RADIUS; dy++) {
        const at = centreR + dy * rw;
        for (let dx = -RESTORED_RADIUS; dx <= RESTORED_RADIUS; dx++) correction += weights[k++] * planeR[at + dx];
      }
      for (let dy = -JPEG_RADIUS; dy <= JPEG_RADIUS; dy++) {
        const at = centreJ + dy * jw;
        for (let dx = -JPEG_RADIUS; dx <= JPEG_RADIUS; dx++) correction += weights[k++] * planeJ[at + dx];
      }
      correction += weights[k];
      for (let ch = 0; ch < channels; ch++) {
        const v = Math.round(restored.data[i * channels + ch] + correction);
        data[i * channels + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { width: w, height: h, channels, data };
}

/** A filter from its safetensors (`LumaPostFilter.toSafetensors`); the source is closed. */
export async function readLumaPostFilter(source: ByteSource): Promise<LumaPostFilter> {
  const file = await SafetensorsFile.open(source);
  try {
    if (file.metadata.format !== FORMAT) throw new PipelineError(`${source.name} is not a luma post-filter of this version (format ${file.metadata.format ?? 'missing'}, expected ${FORMAT})`);
    const info = file.tensors.get(WEIGHTS);
    if (!info || info.shape.length !== 3 || info.shape[0] < 1 || info.shape[1] !== POST_FILTER_CLASSES || info.shape[2] !== POST_FILTER_FEATURES) {
      throw new PipelineError(`${source.name}: expected '${WEIGHTS}' of shape [stages, ${POST_FILTER_CLASSES}, ${POST_FILTER_FEATURES}] (got ${info ? `[${info.shape.join(', ')}]` : 'none'})`);
    }
    const { format: _, ...provenance } = file.metadata;
    return new LumaPostFilter((await file.read(WEIGHTS)).data, provenance);
  } finally {
    await file.close();
  }
}

/** `readLumaPostFilter` of bytes in memory. */
export const lumaPostFilterFromBytes = (bytes: Uint8Array, name = POST_FILTER_FILE): Promise<LumaPostFilter> => readLumaPostFilter(bytesSource(bytes, name));

export interface PostFilterSolveOptions {
  /** Added to the normal equations' diagonal (luma in 0..255, the bias feature 1). Default 1. */
  readonly ridge?: number;
  /** A class with fewer pixels keeps a zero filter (no correction). Default 20 per feature. */
  readonly minSamples?: number;
  /** Recorded in the file: how it was fitted. */
  readonly provenance?: Readonly<Record<string, string>>;
}

/**
 * Least squares for `LumaPostFilter`: the normal equations of every class, accumulated image by image (restored,
 * its JPEG, the original), then solved. The target is the original's luma minus the restored luma.
 */
export class LumaPostFilterFit {
  /** Per class, the upper triangle of FᵀF (row-major, full rows kept for simple indexing) and Fᵀr. */
  private readonly gram = new Float64Array(POST_FILTER_CLASSES * POST_FILTER_FEATURES * POST_FILTER_FEATURES);
  private readonly moment = new Float64Array(POST_FILTER_CLASSES * POST_FILTER_FEATURES);
  private readonly counts = new Float64Array(POST_FILTER_CLASSES);
  /** Pixels accumulated so far. */
  samples = 0;

  add(restored: Pixels, jpeg: Pixels, original: Pixels, grid: GridPhase = ALIGNED_GRID): void {
    checkPair(restored, jpeg, 'the JPEG');
    checkPair(restored, original, 'the original');
    checkGrid(grid);
    const target = luma(original);
    const restoredLuma = luma(restored);
    const { gram, moment, counts } = this;
    const K = POST_FILTER_FEATURES;
    const { width: w, height: h } = restored;
    const input = new FilterInput(restoredLuma, paddedJpeg(luma(jpeg), w, h), w, h, grid);
    const f = new Float64Array(K);
    for (let y = 0, i = 0; y < h; y++) {
      for (let x = 0; x < w; x++, i++) {
        input.features(x, y, f);
        const cls = input.classes[i], r = target[i] - restoredLuma[i];
        const g = cls * K * K, m = cls * K;
        for (let a = 0; a < K; a++) {
          const fa = f[a];
          moment[m + a] += fa * r;
          const row = g + a * K;
          for (let b = a; b < K; b++) gram[row + b] += fa * f[b];
        }
        counts[cls]++;
      }
    }
    this.samples += restored.width * restored.height;
  }

  solve(options: PostFilterSolveOptions = {}): LumaPostFilter {
    const K = POST_FILTER_FEATURES;
    const ridge = options.ridge ?? 1;
    const minSamples = options.minSamples ?? 20 * K;
    if (!(ridge > 0)) throw new PipelineError(`ridge must be positive (got ${ridge})`);
    const weights = new Float32Array(POST_FILTER_CLASSES * K);
    const a = new Float64Array(K * K);
    let solved = 0;
    for (let c = 0; c < POST_FILTER_CLASSES; c++) {
      if (this.counts[c] < minSamples) continue;
      for (let i = 0; i < K; i++) {
        for (let j = i; j < K; j++) a[i * K + j] = a[j * K + i] = this.gram[c * K * K + i * K + j];
        a[i * K + i] += ridge;
      }
      const x = solveSymmetricPositive(a, this.moment.subarray(c * K, (c + 1) * K), K);
      weights.set(x, c * K);
      solved++;
    }
    return new LumaPostFilter(weights, { ...options.provenance, samples: String(this.samples), classes_fitted: String(solved), ridge: String(ridge) });
  }
}

/** x with A·x = b for a symmetric positive definite A (K×K, overwritten by its Cholesky factor). */
function solveSymmetricPositive(a: Float64Array, b: Float64Array, K: number): Float64Array {
  for (let j = 0; j < K; j++) {
    let d = a[j * K + j];
    for (let k = 0; k < j; k++) d -= a[j * K + k] ** 2;
    if (!(d > 0)) throw new PipelineError('the normal equations are not positive definite (is the ridge positive?)');
    const l = Math.sqrt(d);
    a[j * K + j] = l;
    for (let i = j + 1; i < K; i++) {
      let s = a[i * K + j];
      for (let k = 0; k < j; k++) s -= a[i * K + k] * a[j * K + k];
      a[i * K + j] = s / l;
    }
  }
  const x = Float64Array.from(b);
  for (let i = 0; i < K; i++) {
    for (let k = 0; k < i; k++) x[i] -= a[i * K + k] * x[k];
    x[i] /= a[i * K + i];
  }
  for (let i = K - 1; i >= 0; i--) {
    for (let k = i + 1; k < K; k++) x[i] -= a[k * K + i] * x[k];
    x[i] /= a[i * K + i];
  }
  return x;
}
