import * as tf from '@tensorflow/tfjs-core';
import { silu, type GroupNorm } from '@codiff/nn';
import type { Attention, AutoencoderKL, ResnetBlock2D, VaeDecoder, VaeEncoder } from '@codiff/sd-unet';
import { abortPoint } from './tiling.js';

/** CODiff's tiled-VAE sizes: encoder tiles of 1024 px with 32 px of padding, decoder tiles of 224 latent px with 11. */
export const VAE_ENCODER_TILE = 1024;
export const VAE_DECODER_TILE = 224;
const ENCODER_PAD = 32;
const DECODER_PAD = 11;

/** A step of the tiled VAE: a layer on one tile, or a point where all tiles share GroupNorm statistics. */
type Task =
  | { readonly kind: 'run'; readonly fn: (x: tf.Tensor4D) => tf.Tensor4D }
  | { readonly kind: 'storeResidual'; readonly fn: (x: tf.Tensor4D) => tf.Tensor4D }
  | { readonly kind: 'addResidual' }
  | { readonly kind: 'groupNorm'; readonly norm: GroupNorm };

const identity = (x: tf.Tensor4D) => x;
const run = (fn: (x: tf.Tensor4D) => tf.Tensor4D): Task => ({ kind: 'run', fn });
const swish = run((x) => silu(x) as tf.Tensor4D);

function resnetTasks(r: ResnetBlock2D): Task[] {
  const shortcut = r.convShortcut;
  return [
    { kind: 'storeResidual', fn: shortcut ? (x) => shortcut.forward(x) : identity },
    { kind: 'groupNorm', norm: r.norm1 },
    swish,
    run((x) => r.conv1.forward(x)),
    { kind: 'groupNorm', norm: r.norm2 },
    swish,
    run((x) => r.conv2.forward(x)),
    { kind: 'addResidual' },
  ];
}

/** Self-attention over the tile's own pixels (the official hook's per-tile attention). */
function attentionTasks(a: Attention): Task[] {
  return [
    { kind: 'storeResidual', fn: identity },
    { kind: 'groupNorm', norm: a.groupNorm! },
    run((x) => {
      const [b, h, w, c] = x.shape;
      return tf.reshape(a.forward(tf.reshape(x, [b, h * w, c]) as tf.Tensor3D), [b, h, w, c]) as tf.Tensor4D;
    }),
    { kind: 'addResidual' },
  ];
}

function midTasks(mid: VaeEncoder['midBlock']): Task[] {
  return [...resnetTasks(mid.resnets.items[0]), ...attentionTasks(mid.attentions.items[0]), ...resnetTasks(mid.resnets.items[1])];
}

function outTasks(net: VaeEncoder | VaeDecoder): Task[] {
  return [{ kind: 'groupNorm', norm: net.convNormOut }, swish, run((x) => net.convOut.forward(x))];
}

function encoderTasks(e: VaeEncoder): Task[] {
  return [
    run((x) => e.convIn.forward(x)),
    ...e.downBlocks.items.flatMap((b) => [...b.resnets.items.flatMap(resnetTasks), ...(b.downsamplers ? [run((x) => b.downsamplers!.items[0].forward(x))] : [])]),
    ...midTasks(e.midBlock),
    ...outTasks(e),
  ];
}

function decoderTasks(d: VaeDecoder): Task[] {
  return [
    run((x) => d.convIn.forward(x)),
    ...midTasks(d.midBlock),
    ...d.upBlocks.items.flatMap((b) => [...b.resnets.items.flatMap(resnetTasks), ...(b.upsamplers ? [run((x) => b.upsamplers!.items[0].forward(x))] : [])]),
    ...outTasks(d),
  ];
}

/** [x1, x2, y1, y2] */
type Box = [number, number, number, number];

/** multidiffusion's `get_best_tile_size`: round the tile up to a multiple of 32, 16, … 2 within the upper bound. */
function bestTileSize(lower: number, upper: number): number {
  for (let divider = 32; divider >= 2; divider /= 2) {
    const rest = lower % divider;
    if (rest === 0) return lower;
    const candidate = lower - rest + divider;
    if (candidate <= upper) return candidate;
  }
  return lower;
}

/**
 * The official hook's tiles of an h×w input: core tiles of about `tile` px, each read with `pad` px of context
 * (input boxes) and written to its core, extended to the border when within `pad` of it (output boxes, in output
 * pixels: ×8 for the decoder, ÷8 for the encoder). Boxes are [x1, x2, y1, y2], in the official order (rows outer).
 */
export function vaeTiles(h: number, w: number, tile: number, pad: number, decoder: boolean): { inputs: Box[]; outputs: Box[] } {
  const rows = Math.max(1, Math.ceil((h - 2 * pad) / tile)), cols = Math.max(1, Math.ceil((w - 2 * pad) / tile));
  const tileH = bestTileSize(Math.ceil((h - 2 * pad) / rows), tile), tileW = bestTileSize(Math.ceil((w - 2 * pad) / cols), tile);
  const inputs: Box[] = [], outputs: Box[] = [];
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const core: Box = [pad + j * tileW, Math.min(pad + (j + 1) * tileW, w), pad + i * tileH, Math.min(pad + (i + 1) * tileH, h)];
      const out: Box = [core[0] > pad ? core[0] : 0, core[1] < w - pad ? core[1] : w, core[2] > pad ? core[2] : 0, core[3] < h - pad ? core[3] : h];
      outputs.push(out.map((v) => (decoder ? v * 8 : Math.floor(v / 8))) as Box);
      inputs.push([Math.max(0, core[0] - pad), Math.min(w, core[1] + pad), Math.max(0, core[2] - pad), Math.min(h, core[3] + pad)]);
    }
  }
  return { inputs, outputs };
}

/** One tile's activation between synchronisation points, kept in host memory. */
interface TileState {
  data: Float32Array;
  shape: [number, number, number, number];
  residual?: { data: Float32Array; shape: [number, number, number, number] };
}

const upload = (s: { data: Float32Array; shape: [number, number, number, number] }) => tf.tensor4d(s.data, s.shape);
async function download(t: tf.Tensor4D) {
  const out = { data: (await t.data()) as Float32Array, shape: t.shape as [number, number, number, number] };
  t.dispose();
  return out;
}

/**
 * Per-group mean and biased variance of each tile (padding included), combined weighted by tile pixel count, as the
 * official GroupNormParam: Σ pᵢ·varᵢ / Σ pᵢ — not the variance of the whole image (no between-tile term, and the
 * overlapping pads count twice).
 */
function sharedGroupStats(tiles: readonly TileState[], groups: number): { mean: Float64Array; variance: Float64Array } {
  const mean = new Float64Array(groups), variance = new Float64Array(groups);
  const pixels = tiles.map((t) => t.shape[1] * t.shape[2]);
  const total = pixels.reduce((a, p) => a + p, 0);
  tiles.forEach((t, i) => {
    const c = t.shape[3], per = c / groups, n = pixels[i] * per;
    const sum = new Float64Array(groups), sq = new Float64Array(groups);
    for (let p = 0; p < pixels[i]; p++) {
      for (let k = 0; k < c; k++) {
        const v = t.data[p * c + k], g = Math.floor(k / per);
        sum[g] += v;
        sq[g] += v * v;
      }
    }
    for (let g = 0; g < groups; g++) {
      const m = sum[g] / n;
      mean[g] += (m * pixels[i]) / total;
      variance[g] += ((sq[g] / n - m * m) * pixels[i]) / total;
    }
  });
  return { mean, variance };
}

/** (x − mean_g)/√(var_g + 1e-6)·γ + β with given group statistics (the official custom_group_norm). */
function applyGroupNorm(x: tf.Tensor4D, norm: GroupNorm, stats: { mean: Float64Array; variance: Float64Array }): tf.Tensor4D {
  return tf.tidy(() => {
    const c = x.shape[3], per = c / norm.groups;
    const channelMean = Float32Array.from({ length: c }, (_, k) => stats.mean[Math.floor(k / per)]);
    const channelScale = Float32Array.from({ length: c }, (_, k) => 1 / Math.sqrt(stats.variance[Math.floor(k / per)] + 1e-6));
    const normed = tf.mul(tf.sub(x, tf.tensor1d(channelMean)), tf.tensor1d(channelScale));
    return tf.add(tf.mul(normed, norm.weight.value), norm.bias.value) as tf.Tensor4D;
  });
}

/**
 * Run a VAE encoder or decoder over tiles as CODiff's `VAEHook` (multidiffusion's tiled VAE, non-fast mode): every
 * tile runs the layers up to the next GroupNorm, the tiles' statistics are combined and every tile is normalised
 * with them; residuals and attention are per tile; each tile's core is written to the output without blending.
 * Activations wait in host memory between layers, so the device holds one tile at a time.
 */
async function runTiled(tasks: readonly Task[], x: tf.Tensor4D, tile: number, pad: number, decoder: boolean, options: TiledVaeOptions): Promise<tf.Tensor4D> {
  const [, h, w] = x.shape;
  const { inputs, outputs } = vaeTiles(h, w, tile, pad, decoder);
  const tiles: TileState[] = [];
  for (const [x1, x2, y1, y2] of inputs) tiles.push(await download(tf.slice(x, [0, y1, x1, 0], [-1, y2 - y1, x2 - x1, -1])));
  let pc = 0;
  const segments = tasks.filter((t) => t.kind === 'groupNorm').length + 1;
  for (let segment = 0; pc < tasks.length; segment++) {
    const first = tasks[pc];
    const shared = first.kind === 'groupNorm' ? { norm: first.norm, stats: sharedGroupStats(tiles, first.norm.groups) } : undefined;
    if (shared) pc++;
    let end = pc;
    while (end < tasks.length && tasks[end].kind !== 'groupNorm') end++;
    for (const t of tiles) {
      let residual = t.residual && upload(t.residual);
      const out = tf.tidy(() => {
        let y = upload(t);
        if (shared) y = applyGroupNorm(y, shared.norm, shared.stats);
        for (const task of tasks.slice(pc, end)) {
          if (task.kind === 'run') y = task.fn(y);
          else if (task.kind === 'storeResidual') {
            const r = task.fn(y);
            residual = tf.keep(r === y ? tf.clone(r) : r);
          }
          else if (task.kind === 'addResidual') {
            y = tf.add(y, residual!);
            residual!.dispose();
            residual = undefined;
          }
        }
        return y;
      });
      Object.assign(t, await download(out));
      t.residual = residual && (await download(residual));
    }
    pc = end;
    options.onProgress?.(segment + 1, segments);
    await abortPoint(options.signal);
  }
  // Each tile's core, cropped from its padded output, into the result.
  const [oh, ow, oc] = decoder ? [h * 8, w * 8, tiles[0].shape[3]] : [Math.floor(h / 8), Math.floor(w / 8), tiles[0].shape[3]];
  const result = new Float32Array(oh * ow * oc);
  tiles.forEach((t, i) => {
    const scaled = inputs[i].map((v) => (decoder ? v * 8 : Math.floor(v / 8)));
    const [ox1, ox2, oy1, oy2] = outputs[i];
    const tw = t.shape[2];
    for (let y = oy1; y < oy2; y++) {
      const src = ((y - scaled[2]) * tw + (ox1 - scaled[0])) * oc;
      result.set(t.data.subarray(src, src + (ox2 - ox1) * oc), (y * ow + ox1) * oc);
    }
  });
  return tf.tensor4d(result, [1, oh, ow, oc]);
}

export interface TiledVaeOptions {
  /** Tile side in pixels (encoder, official 1024) or latent pixels (decoder, official 224). */
  readonly tile?: number;
  /** Called after each pass over the tiles (one per GroupNorm). */
  readonly onProgress?: (done: number, total: number) => void;
  /** Checked after each pass: aborting throws its reason (the tiles wait in host memory, nothing stays on the device). */
  readonly signal?: AbortSignal;
}

/**
 * The VAE encoder's output (before quant_conv) for an image in [−1, 1], [1, H, W, 3]: tiled as CODiff's hook when
 * max(H, W) > tile + 64, else the plain encoder.
 */
export async function tiledEncoder(vae: AutoencoderKL, x: tf.Tensor4D, options: TiledVaeOptions = {}): Promise<tf.Tensor4D> {
  const tile = options.tile ?? VAE_ENCODER_TILE;
  if (Math.max(x.shape[1], x.shape[2]) <= tile + 2 * ENCODER_PAD) return vae.encoder.forward(x);
  return runTiled(encoderTasks(vae.encoder), x, tile, ENCODER_PAD, false, options);
}

/**
 * The VAE decoder on a latent (post_quant_conv applied by the caller), [1, h, w, C]: tiled as CODiff's hook when
 * max(h, w) > tile + 22, else the plain decoder.
 */
export async function tiledDecoder(vae: AutoencoderKL, z: tf.Tensor4D, options: TiledVaeOptions = {}): Promise<tf.Tensor4D> {
  const tile = options.tile ?? VAE_DECODER_TILE;
  if (Math.max(z.shape[1], z.shape[2]) <= tile + 2 * DECODER_PAD) return vae.decoder.forward(z);
  return runTiled(decoderTasks(vae.decoder), z, tile, DECODER_PAD, true, options);
}
