import * as tf from '@tensorflow/tfjs-core';
import { PipelineError } from './errors.js';

/** The official latent tile (96) and overlap (32), in latent pixels. */
export const LATENT_TILE = 96;
export const LATENT_OVERLAP = 32;

/** Where the UNet runs on a latent: one call on the whole latent, or on square tiles blended with Gaussian weights. */
export interface LatentTiles {
  /** Side of each square tile (the requested size, or the latent's shorter side if that is smaller). */
  readonly tile: number;
  /** Overlap actually used (see `latentTiles`). */
  readonly overlap: number;
  /** Top-left corners [y, x] in the official loop order: outer over x, inner over y. */
  readonly origins: readonly (readonly [number, number])[];
}

/**
 * The official tile grid for an h×w latent: no tiling unless h·w > tile²; otherwise tile = min(tile, h, w), stride
 * tile − overlap, as many tiles per axis as needed to cover it, the last one moved flush to the edge. Where the
 * official loop never ends (tile ≤ overlap after the shrink to the latent's side), the overlap becomes ⌊tile/2⌋.
 */
export function latentTiles(h: number, w: number, tileSize = LATENT_TILE, overlapSize = LATENT_OVERLAP): LatentTiles | null {
  for (const [name, v, min] of [['latent height', h, 1], ['latent width', w, 1], ['tile size', tileSize, 1], ['tile overlap', overlapSize, 0]] as const) {
    if (!Number.isInteger(v) || v < min) throw new PipelineError(`${name} must be an integer ≥ ${min} (got ${v})`);
  }
  if (h * w <= tileSize * tileSize) return null;
  const tile = Math.min(tileSize, h, w);
  const overlap = tile <= overlapSize ? Math.floor(tile / 2) : overlapSize;
  const stride = tile - overlap;
  const starts = (side: number) => {
    const count = Math.max(1, Math.ceil((side - tile) / stride) + 1);
    return Array.from({ length: count }, (_, i) => (i === count - 1 ? side - tile : i * stride));
  };
  const ys = starts(h);
  const origins = starts(w).flatMap((x) => ys.map((y) => [y, x] as const));
  return { tile, overlap, origins };
}

/**
 * The official `_gaussian_weights`: outer product of exp(−(d/N)²/(2·0.01))/√(2π·0.01) along y (midpoint N/2) and x
 * (midpoint (N−1)/2), row-major [y][x], in float64 as the official code computes them.
 */
export function gaussianTileWeights(n: number): Float64Array {
  const variance = 0.01;
  const profile = (mid: number) =>
    Array.from({ length: n }, (_, i) => Math.exp(-((i - mid) * (i - mid)) / (n * n) / (2 * variance)) / Math.sqrt(2 * Math.PI * variance));
  const xs = profile((n - 1) / 2), ys = profile(n / 2);
  const out = new Float64Array(n * n);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) out[y * n + x] = ys[y] * xs[x];
  return out;
}

export interface TilingOptions {
  readonly tile?: number;
  readonly overlap?: number;
  /** Called after each UNet call (done, total). */
  readonly onTile?: (done: number, total: number) => void;
  /** Checked between tiles: aborting throws the signal's reason and frees what the loop held. */
  readonly signal?: AbortSignal;
}

/**
 * With a signal: give other tasks a turn (a worker's 'cancel' message, a click) before checking it. On wasm every op
 * runs synchronously and `data()` resolves as a microtask, so without this an abort could only land after the work.
 */
export async function abortPoint(signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return;
  await new Promise((resolve) => setTimeout(resolve, 0));
  signal.throwIfAborted();
}

/**
 * Run `predict` (the UNet on a latent, its output the latent's shape) over `z` [1, h, w, C] as the official inference
 * does: one call if the latent is small, else one call per tile, blended by the Gaussian weights (Σ w·out / Σ w).
 * Sums are kept on the host, so memory is bounded by the tile, not the latent.
 */
export async function tiledPrediction(z: tf.Tensor4D, predict: (latent: tf.Tensor4D) => tf.Tensor4D, options: TilingOptions = {}): Promise<tf.Tensor4D> {
  const [batch, h, w, c] = z.shape;
  if (batch !== 1) throw new PipelineError(`latent tiling takes one image at a time (got a batch of ${batch})`);
  const grid = latentTiles(h, w, options.tile, options.overlap);
  await abortPoint(options.signal);
  if (!grid) {
    const out = tf.tidy(() => predict(z));
    options.onTile?.(1, 1);
    return out;
  }
  const { tile, origins } = grid;
  const weights = gaussianTileWeights(tile);
  const sum = new Float32Array(h * w * c), contributors = new Float32Array(h * w);
  for (const [i, [y0, x0]] of origins.entries()) {
    await abortPoint(options.signal);
    const out = tf.tidy(() => predict(tf.slice(z, [0, y0, x0, 0], [1, tile, tile, c])));
    const data = await out.data();
    out.dispose();
    for (let y = 0; y < tile; y++) {
      for (let x = 0; x < tile; x++) {
        const wgt = weights[y * tile + x];
        const at = (y0 + y) * w + x0 + x;
        contributors[at] += wgt;
        for (let k = 0; k < c; k++) sum[at * c + k] += data[(y * tile + x) * c + k] * wgt;
      }
    }
    options.onTile?.(i + 1, origins.length);
  }
  for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) sum[p * c + k] /= contributors[p];
  return tf.tensor4d(sum, [1, h, w, c]);
}
