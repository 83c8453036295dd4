import * as tf from '@tensorflow/tfjs-core';
import { replicatePad } from '@codiff/nn';
import type { AutoencoderKL } from '@codiff/sd-unet';
import { officialUint8, type ColorFix } from './colorfix.js';
import { ALIGNED_GRID, smoothBlockEdges, type GridPhase } from './deblock.js';
import { PipelineError } from './errors.js';
import type { CodiffGenerator } from './generator.js';
import { PixelUnshuffleAutoencoder } from './pixel-unshuffle.js';
import { POST_FILTER_FILE, type LumaPostFilter } from './postfilter.js';
import { tiledDecoder, tiledEncoder, type TiledVaeOptions } from './tiled-vae.js';
import { abortPoint, LATENT_OVERLAP, LATENT_TILE, tiledPrediction } from './tiling.js';

/** 8-bit interleaved pixels, grey (1 channel) or RGB (3), as @codiff/image-io decodes them. */
export interface Pixels {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly data: Uint8Array;
}

export type RestoreStage = 'encode' | 'unet' | 'decode';

export interface RestoreOptions {
  /** Latent tile and overlap (official: 96 and 32 for SD's ×8 latents; the same pixel footprint for a stand-in's). */
  readonly tile?: number;
  readonly overlap?: number;
  /** Official default: AdaIN. */
  readonly color?: ColorFix;
  /** Tiled-VAE tile sizes (official: encoder 1024 px, decoder 224 latent px); smaller tiles, less memory. */
  readonly vaeEncoderTile?: number;
  readonly vaeDecoderTile?: number;
  /**
   * Smooth the steps the model left across the JPEG's 8×8 grid, no more than down to the level inside blocks
   * (`smoothBlockEdges`). Default: on for a model on the pixel-unshuffle stand-in (codiff-lite, whose model card
   * measures it), off for the SD-based CODiff, whose official pipeline has no such step.
   */
  readonly deblock?: boolean;
  /**
   * Favour PSNR over perceptual quality: after the smoothing, run the model folder's learned luma post-filter
   * (`g.postFilter`) and smooth again. On codiff-lite's test photos at QF 10 it adds about 0.3 dB of PSNR-Y and
   * makes LPIPS worse (its model card has the numbers), so it is off by default. Needs `deblock` and a folder that
   * has the filter; without either it is a named error before any work.
   */
  readonly postFilter?: boolean;
  /** Where the JPEG's 8×8 grid lies in the image, for `deblock` and `postFilter` (default: aligned, as in a decoded JPEG file). */
  readonly grid?: GridPhase;
  readonly onProgress?: (stage: RestoreStage, done: number, total: number) => void;
  /** Checked between stages, latent tiles and tiled-VAE passes; aborting throws its reason and frees every tensor of the restore. */
  readonly signal?: AbortSignal;
}

/**
 * Restore one JPEG-decoded image of any size: replicate-padded to a multiple of 8, CaVE tokens of the whole image,
 * the mean latent (tiled VAE encoder for large images), the UNet over latent tiles (every tile sees all tokens), one
 * step to x̂0, the VAE decoder (tiled for large images), cropped back, then the official uint8 conversion and colour
 * fix, and (codiff-lite) block-edge smoothing, and on request the learned luma post-filter. A grey image runs as three equal channels and comes back grey (BT.601
 * luma of the result).
 */
export async function restoreImage(g: CodiffGenerator, image: Pixels, options: RestoreOptions = {}): Promise<Pixels> {
  const { width: w, height: h, channels } = image;
  if (channels !== 1 && channels !== 3) throw new PipelineError(`restore takes grey or RGB pixels (got ${channels} channels)`);
  if (image.data.length !== w * h * channels) throw new PipelineError(`pixel buffer of ${image.data.length} bytes does not hold ${w}×${h}×${channels}`);
  if (w < 25 || h < 25) throw new PipelineError(`${w}×${h} is too small to restore (CaVE needs at least 25×25)`);
  const deblock = options.deblock ?? deblocksByDefault(g);
  if (options.postFilter && !deblock) throw new PipelineError('postFilter runs after the block-edge smoothing, which is off here (deblock)');
  if (options.postFilter && !g.postFilter) throw new PipelineError(`postFilter: this model has no luma post-filter (a model folder's ${POST_FILTER_FILE}; codiff train postfilter fits one)`);
  const progress = options.onProgress ?? (() => undefined);
  const held: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T) => (held.push(t), t);
  try {
    const lq = keep(tf.tidy(() => {
      const x = tf.div(tf.tensor4d(image.data, [1, h, w, channels], 'float32'), 255);
      return (channels === 1 ? tf.tile(x, [1, 1, 1, 3]) : x) as tf.Tensor4D;
    }));
    // Replicate padding to multiples of 8 (the VAE and UNet need them); cropped off again after decoding.
    const padded = replicatePad(lq, { bottom: (8 - (h % 8)) % 8, right: (8 - (w % 8)) % 8 });
    if (padded !== lq) held.push(padded);
    await abortPoint(options.signal);
    const { tokens, context } = g.conditioning(padded);
    held.push(tokens, context);
    // The pixel-unshuffle stand-in is a reshape: no tiles needed, its memory is the image's.
    const z = keep(usesSdVae(g) ? await encodeMean(g, padded, { tile: options.vaeEncoderTile, signal: options.signal, onProgress: (d, t) => progress('encode', d, t) }) : g.encode(padded));
    progress('encode', 1, 1);
    // The official tiles cover 768 px with SD's ×8 latents; a finer stand-in latent keeps that footprint.
    const pixelsPerLatent = g.pixelsPerLatent;
    const eps = keep(
      await tiledPrediction(z, (tile) => g.predictNoise(tile, context), {
        tile: options.tile ?? Math.round((LATENT_TILE * 8) / pixelsPerLatent),
        overlap: options.overlap ?? Math.round((LATENT_OVERLAP * 8) / pixelsPerLatent),
        signal: options.signal,
        onTile: (done, total) => progress('unet', done, total),
      }),
    );
    await abortPoint(options.signal);
    const decoded = keep(usesSdVae(g) ? await decodeTiled(g, z, eps, { tile: options.vaeDecoderTile, signal: options.signal, onProgress: (d, t) => progress('decode', d, t) }) : tf.tidy(() => g.decode(g.denoise(z, eps))));
    progress('decode', 1, 1);
    const restored = keep(tf.tidy(() => tf.slice(tf.clipByValue(decoded, -1, 1), [0, 0, 0, 0], [1, h, w, 3]) as tf.Tensor4D));
    const u8 = keep(tf.tidy(() => {
      const rgb = officialUint8(restored, lq, options.color ?? 'adain');
      // BT.601 luma, rounded, for a grey input (its three restored channels are near-equal, not identical).
      return channels === 1 ? tf.round(tf.sum(tf.mul(tf.cast(rgb, 'float32'), [0.299, 0.587, 0.114]), 3, true)) : rgb;
    }));
    const out: Pixels = { width: w, height: h, channels, data: Uint8Array.from(await u8.data()) };
    if (!deblock) return out;
    const grid = options.grid ?? ALIGNED_GRID;
    const smoothed = smoothBlockEdges(out, grid).image;
    return options.postFilter ? postFilterSmoothed(g.postFilter!, smoothed, image, grid) : smoothed;
  } finally {
    tf.dispose(held);
  }
}

/**
 * `restoreImage`'s `postFilter` step, on `smoothed`, what it returned without the filter (`jpeg`: the image it was
 * given): the filter, then the smoothing again, which takes back the steps the filter leaves at block edges (PSNR-B).
 * A caller that kept `smoothed` can switch the filter on without running the model again (the web page does).
 */
export function postFilterSmoothed(filter: LumaPostFilter, smoothed: Pixels, jpeg: Pixels, grid: GridPhase = ALIGNED_GRID): Pixels {
  return smoothBlockEdges(filter.apply(smoothed, jpeg, grid), grid).image;
}

/**
 * Whether `restoreImage` smooths block edges when `deblock` is not given: yes on the pixel-unshuffle stand-in
 * (codiff-lite, whose outputs keep steps at the 8×8 grid), no with SD's VAE (the paper's pipeline has no such step).
 */
export const deblocksByDefault = (g: CodiffGenerator): boolean => !usesSdVae(g);

const usesSdVae = (g: CodiffGenerator): g is CodiffGenerator & { vae: AutoencoderKL } => !(g.vae instanceof PixelUnshuffleAutoencoder);

/** The scaled mean latent of an image in [0, 1], SD's VAE encoder tiled for large images (as `g.encode`, without noise). */
async function encodeMean(g: CodiffGenerator & { vae: AutoencoderKL }, x01: tf.Tensor4D, options: TiledVaeOptions): Promise<tf.Tensor4D> {
  const x = tf.tidy(() => tf.sub(tf.mul(x01, 2), 1) as tf.Tensor4D);
  let features: tf.Tensor4D;
  try {
    features = await tiledEncoder(g.vae, x, options);
  } finally {
    x.dispose();
  }
  return tf.tidy(() => {
    const moments = g.vae.quantConv.forward(features);
    features.dispose();
    const [mean] = tf.split(moments, 2, 3);
    return tf.mul(mean, g.vae.config.scalingFactor) as tf.Tensor4D;
  });
}

/** x̂0 from z and ε, through SD's VAE decoder tiled for large images (as `g.decode(g.denoise(z, eps))`). */
async function decodeTiled(g: CodiffGenerator & { vae: AutoencoderKL }, z: tf.Tensor4D, eps: tf.Tensor4D, options: TiledVaeOptions): Promise<tf.Tensor4D> {
  const latent = tf.tidy(() => g.vae.postQuantConv.forward(tf.div(g.denoise(z, eps), g.vae.config.scalingFactor) as tf.Tensor4D));
  try {
    return await tiledDecoder(g.vae, latent, options);
  } finally {
    latent.dispose();
  }
}
