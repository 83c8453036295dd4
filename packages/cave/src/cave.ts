import * as tf from '@tensorflow/tfjs-core';
import { BatchNorm2d, Conv2d, ConvTranspose2d, Linear, Module, replicatePad, type HostTensor } from '@codiff/nn';
import { CaveError } from './errors.js';

/** Widths of the four scales and ResBlocks per stage; the official CaVE is channels [64,128,256,512], 4 blocks. */
export interface CaveConfig {
  readonly channels: readonly [number, number, number, number];
  readonly blocks: number;
  readonly inChannels?: number;
  readonly outChannels?: number;
  /**
   * The patch side the QF head was trained on (a stage-1 run records it), over whose tiles `estimateQuality`
   * averages the head. The head's 3×3 convolutions run on the ⌊side/32⌋² body map, mostly zero padding at 64² (2×2),
   * so the same head on a whole photo reads a different scale: for the lite CaVE (64²) the mean QF error on the test
   * photos was 19.9 on whole 512² crops and 8.2 averaged over 64² tiles. Absent: the whole image, as the official code.
   */
  readonly qualityPatch?: number;
}

/** The paper's configuration (`options/cave.json`): about 75 M parameters. */
export const OFFICIAL_CAVE: CaveConfig = { channels: [64, 128, 256, 512], blocks: 4 };

// BatchNorm2d(momentum=0.9, eps=1e-4) in the official layers; momentum in torch's convention (new batch weighs 0.9).
const BN = { eps: 1e-4, momentum: 0.9 };

/** conv3 → BN → ReLU → conv3, as the official `res` Sequential (index 2 is the parameter-free ReLU). */
class ResidualBranch extends Module {
  readonly conv1: Conv2d;
  readonly norm: BatchNorm2d;
  readonly conv2: Conv2d;
  constructor(channels: number) {
    super();
    this.conv1 = this.child('0', new Conv2d(channels, channels, 3, { padding: 1 }));
    this.norm = this.child('1', new BatchNorm2d(channels, BN));
    this.conv2 = this.child('3', new Conv2d(channels, channels, 3, { padding: 1 }));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.conv2.forward(tf.relu(this.conv1.forwardWithBatchNorm(x, this.norm))));
  }
}

/** x + res(x). */
class ResBlock extends Module {
  readonly res: ResidualBranch;
  constructor(channels: number) {
    super();
    this.res = this.child('res', new ResidualBranch(channels));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(x, this.res.forward(x)));
  }
}

/**
 * The decoder's block. The official forward passes γ = β = 1.0 as plain numbers, so x + (γ·res(x) + β) is
 * x + res(x) + 1: the +1 is part of the model the checkpoints were trained with.
 */
class QFAttention extends ResBlock {
  override forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(super.forward(x), 1));
  }
}

/** A Sequential of modules each taking and returning a 4-D activation, registered under their indices. */
type Layer = Module & { forward(x: tf.Tensor4D): tf.Tensor4D };
class Stage extends Module {
  constructor(readonly layers: readonly Layer[]) {
    super();
    layers.forEach((m, i) => this.child(String(i), m));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.layers.reduce((h, m) => m.forward(h), x));
  }
}

/** ResBlocks → global average → Linear-ReLU-Linear-ReLU-Linear → sigmoid; indices as the official Sequential. */
class QualityHead extends Module {
  readonly blocks: ResBlock[];
  readonly fc: Linear[];
  constructor(channels: number, blocks: number) {
    super();
    this.blocks = Array.from({ length: blocks }, (_, i) => this.child(String(i), new ResBlock(channels)));
    // After the blocks: AdaptiveAvgPool2d, Flatten, then Linear at every other index (ReLUs between).
    this.fc = [channels, channels, 1].map((out, i) => this.child(String(blocks + 2 + 2 * i), new Linear(channels, out)));
  }

  forward(tokensMap: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const h = this.blocks.reduce((a, b) => b.forward(a), tokensMap);
      let v: tf.Tensor = tf.mean(h, [1, 2]);
      v = tf.relu(this.fc[0].forward(v));
      v = tf.relu(this.fc[1].forward(v));
      return tf.sigmoid(this.fc[2].forward(v)) as tf.Tensor2D;
    });
  }
}

export interface CaveOutput {
  /** The reconstruction decoder's output, [B, H, W, 3] (training only; no output activation). */
  readonly reconstruction: tf.Tensor4D;
  /** Predicted (100 − QF)/100, [B, 1]. */
  readonly qf: tf.Tensor2D;
  /** Visual embedding [B, N, C], N = ⌊H₈/32⌋·⌊W₈/32⌋ in row-major order. */
  readonly tokens: tf.Tensor3D;
}

/**
 * CaVE, the compression-aware visual embedder of CODiff (stage 1), as the official `cave/cave.py`: an FBCNN-style
 * U-Net whose bottleneck (the body encoder's output) is the embedding, with a quality-factor head on it and a
 * reconstruction decoder that only training uses. Inputs are NHWC images in [0, 1]; parameter paths are the
 * official state-dict keys.
 */
export class CaVE extends Module {
  readonly config: CaveConfig & { readonly inChannels: number; readonly outChannels: number };
  readonly m_head: Conv2d;
  readonly m_down1: Stage;
  readonly m_down2: Stage;
  readonly m_down3: Stage;
  readonly m_body_encoder: Stage;
  readonly qf_pred: QualityHead;
  readonly m_body_decoder: Stage;
  readonly m_up3: Stage;
  readonly m_up2: Stage;
  readonly m_up1: Stage;
  readonly m_tail: Conv2d;

  constructor(config: CaveConfig = OFFICIAL_CAVE) {
    super();
    this.config = { inChannels: 3, outChannels: 3, ...validConfig(config) };
    const [c1, c2, c3, c4] = this.config.channels;
    const nb = this.config.blocks;
    const res = (c: number) => Array.from({ length: nb }, () => new ResBlock(c));
    const qfAtt = (c: number) => Array.from({ length: nb }, () => new QFAttention(c));
    const down = (cin: number, cout: number, k: number) => new Conv2d(cin, cout, k, { stride: k });
    const up = (cin: number, cout: number, k: number) => new ConvTranspose2d(cin, cout, k, { stride: k });
    this.m_head = this.child('m_head', new Conv2d(this.config.inChannels, c1, 3, { padding: 1 }));
    this.m_down1 = this.child('m_down1', new Stage([...res(c1), down(c1, c2, 2)]));
    this.m_down2 = this.child('m_down2', new Stage([...res(c2), down(c2, c3, 4)]));
    this.m_down3 = this.child('m_down3', new Stage([...res(c3), down(c3, c4, 4)]));
    this.m_body_encoder = this.child('m_body_encoder', new Stage(res(c4)));
    this.qf_pred = this.child('qf_pred', new QualityHead(c4, nb));
    this.m_body_decoder = this.child('m_body_decoder', new Stage(res(c4)));
    this.m_up3 = this.child('m_up3', new Stage([up(c4, c3, 4), ...qfAtt(c3)]));
    this.m_up2 = this.child('m_up2', new Stage([up(c3, c2, 4), ...qfAtt(c2)]));
    this.m_up1 = this.child('m_up1', new Stage([up(c2, c1, 2), ...qfAtt(c1)]));
    this.m_tail = this.child('m_tail', new Conv2d(c1, this.config.outChannels, 3, { padding: 1 }));
  }

  /** Reconstruction, quality and tokens. The padded size (to 8) must be a multiple of 32 in both axes (see README). */
  forward(x: tf.Tensor4D): CaveOutput {
    const [, h, w] = this.checkInput(x);
    if (ceilTo(h, 8) % 32 !== 0 || ceilTo(w, 8) % 32 !== 0) {
      throw new CaveError(
        `the reconstruction decoder needs the image padded to 8 to be a multiple of 32 in both axes (got ${h}×${w}, padded ${ceilTo(h, 8)}×${ceilTo(w, 8)}); ` +
          'embed() and predictQuality() take any size',
      );
    }
    return tf.tidy(() => {
      const x1 = this.m_head.forward(padTo8(x));
      const x2 = this.m_down1.forward(x1);
      const x3 = this.m_down2.forward(x2);
      const x4 = this.m_down3.forward(x3);
      const tokensMap = this.m_body_encoder.forward(x4);
      const qf = this.qf_pred.forward(tokensMap);
      let y = tf.add(this.m_body_decoder.forward(tokensMap), x4) as tf.Tensor4D;
      y = tf.add(this.m_up3.forward(y), x3);
      y = tf.add(this.m_up2.forward(y), x2);
      y = tf.add(this.m_up1.forward(y), x1);
      const reconstruction = tf.slice(this.m_tail.forward(y), [0, 0, 0, 0], [-1, h, w, -1]);
      return { reconstruction, qf, tokens: flattenTokens(tokensMap) };
    });
  }

  /** The body encoder's output map, [B, ⌊H₈/32⌋, ⌊W₈/32⌋, C] (the decoder is not run). */
  encode(x: tf.Tensor4D): tf.Tensor4D {
    const [, h, w] = this.checkInput(x);
    if (ceilTo(h, 8) < 32 || ceilTo(w, 8) < 32) throw new CaveError(`the image is too small to embed (${h}×${w}; CaVE needs at least 25×25)`);
    return tf.tidy(() => {
      const x4 = this.m_down3.forward(this.m_down2.forward(this.m_down1.forward(this.m_head.forward(padTo8(x)))));
      return this.m_body_encoder.forward(x4);
    });
  }

  /** Tokens [B, N, C] as the official `get_visual_embedding`, at any size ≥ 25 px. */
  embed(x: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => flattenTokens(this.encode(x)));
  }

  /** Predicted (100 − QF)/100 as the official `pred_qf`, [B, 1]. */
  predictQuality(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.qf_pred.forward(this.encode(x)));
  }

  /**
   * The JPEG quality factor (1..100 scale, not rounded) CaVE reads from the pixels of one image in [0, 1]: the QF
   * head's mean over tiles of `config.qualityPatch` (on the image's 8×8 grid, the last row and column of tiles
   * overlapping the others to reach within 7 px of the edges), or over the whole image when the configuration has none.
   */
  async estimateQuality(image: tf.Tensor3D | tf.Tensor4D): Promise<number> {
    const x = image.rank === 3 ? (tf.expandDims(image, 0) as tf.Tensor4D) : (image as tf.Tensor4D);
    try {
      const [batch, h, w] = this.checkInput(x);
      if (batch !== 1) throw new CaveError(`estimateQuality takes one image (got a batch of ${batch}); use predictQuality for batches`);
      const patch = this.config.qualityPatch ?? Math.max(h, w);
      const [th, tw] = [Math.min(patch, h), Math.min(patch, w)];
      const tiles = tileStarts(h, th).flatMap((top) => tileStarts(w, tw).map((left) => [top, left]));
      // About a megapixel per batch of tiles.
      const perBatch = Math.max(1, Math.floor(2 ** 20 / (th * tw)));
      let sum = 0;
      for (let i = 0; i < tiles.length; i += perBatch) {
        const s = tf.tidy(() => {
          const batchOfTiles = tiles.slice(i, i + perBatch).map(([top, left]) => tf.slice(x, [0, top, left, 0], [1, th, tw, -1]));
          return tf.sum(this.predictQuality(tf.concat(batchOfTiles, 0)));
        });
        sum += (await s.data())[0];
        s.dispose();
      }
      return 100 * (1 - sum / tiles.length);
    } finally {
      if (x !== image) x.dispose();
    }
  }

  private checkInput(x: tf.Tensor): number[] {
    if (x.rank !== 4 || x.shape[3] !== this.config.inChannels) {
      throw new CaveError(`CaVE takes images as [B, H, W, ${this.config.inChannels}] (got [${x.shape.join(', ')}]); grayscale goes in as three equal channels`);
    }
    return x.shape;
  }
}

/** Number of parameters of a configuration (state-dict buffers excluded). */
export function caveParameterCount(model: CaVE): number {
  let n = 0;
  for (const [, p] of model.namedTrainableParameters()) n += p.size;
  return n;
}

/**
 * The configuration a state dict was saved from, read from its shapes and keys (so a checkpoint loads without
 * being told its widths). Keys that are not CaVE's give a CaveError naming the first one missing.
 */
export function caveConfigOf(shapes: ReadonlyMap<string, { shape: readonly number[] }>): CaveConfig {
  const shape = (key: string) => {
    const t = shapes.get(key);
    if (!t) throw new CaveError(`not a CaVE state dict: no ${key}`);
    return t.shape;
  };
  const blocks = new Set([...shapes.keys()].map((k) => /^m_down1\.(\d+)\.res\./.exec(k)?.[1]).filter((i) => i !== undefined)).size;
  const head = shape('m_head.weight');
  const widths = [1, 2, 3].map((s) => shape(`m_down${s}.${blocks}.weight`)[0]);
  return { channels: [head[0], widths[0], widths[1], widths[2]], blocks, inChannels: head[1], outChannels: shape('m_tail.weight')[0] };
}

function validConfig(c: CaveConfig): CaveConfig {
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) > 0;
  if (!Array.isArray(c.channels) || c.channels.length !== 4 || !c.channels.every(ok) || !ok(c.blocks)) {
    throw new CaveError(`a CaVE configuration needs four positive integer widths and a positive block count (got ${JSON.stringify(c)})`);
  }
  if (c.qualityPatch !== undefined && !(ok(c.qualityPatch) && c.qualityPatch % 8 === 0 && c.qualityPatch >= 32)) {
    throw new CaveError(`qualityPatch must be a multiple of 8 of at least 32 (got ${JSON.stringify(c.qualityPatch)})`);
  }
  return c;
}

/** Tile starts along an axis of `size` for tiles of `tile`: every `tile`, then one on the 8-grid ending within 7 px of the edge. */
function tileStarts(size: number, tile: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s + tile <= size; s += tile) starts.push(s);
  const last = Math.floor((size - tile) / 8) * 8;
  if (last > starts[starts.length - 1]) starts.push(last);
  return starts;
}

const ceilTo = (n: number, m: number) => Math.ceil(n / m) * m;

/** Replicate-pad the bottom and right edges to a multiple of 8, as the official ReplicationPad2d. */
function padTo8(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  return replicatePad(x, { bottom: ceilTo(h, 8) - h, right: ceilTo(w, 8) - w });
}

/** [B, h, w, C] → [B, h·w, C], row-major as torch's Flatten(-2, -1) + permute(0, 2, 1). */
const flattenTokens = (map: tf.Tensor4D): tf.Tensor3D => tf.reshape(map, [map.shape[0], map.shape[1] * map.shape[2], map.shape[3]]);

/**
 * A CaVE from a state dict (official keys, BatchNorm statistics included), its configuration read from the shapes
 * unless given; strict (missing, unexpected or mis-shaped keys are named). The model is in eval mode.
 */
export function caveFromStateDict(dict: ReadonlyMap<string, HostTensor>, config?: CaveConfig): CaVE {
  const model = new CaVE(config ?? caveConfigOf(dict));
  try {
    model.loadStateDict(dict);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model.eval();
}

/**
 * A CaVE from a checkpoint's tensors and metadata: the configuration from the shapes unless given, the QF head's
 * training patch (`qualityPatch`) from the configuration `saveCave` wrote into the metadata unless given.
 */
export function caveFromCheckpoint(
  checkpoint: { readonly tensors: ReadonlyMap<string, HostTensor>; readonly metadata: Readonly<Record<string, string>> },
  options: { config?: CaveConfig; qualityPatch?: number } = {},
): CaVE {
  const config = options.config ?? caveConfigOf(checkpoint.tensors);
  const qualityPatch = options.qualityPatch ?? config.qualityPatch ?? savedQualityPatch(checkpoint.metadata);
  return caveFromStateDict(checkpoint.tensors, qualityPatch === undefined ? config : { ...config, qualityPatch });
}

function savedQualityPatch(metadata: Readonly<Record<string, string>>): number | undefined {
  if (metadata.config === undefined) return undefined;
  let saved: unknown;
  try {
    saved = JSON.parse(metadata.config);
  } catch {
    throw new CaveError(`the checkpoint's metadata "config" is not JSON: ${metadata.config.slice(0, 80)}`);
  }
  return typeof saved === 'object' && saved !== null ? (saved as CaveConfig).qualityPatch : undefined;
}
