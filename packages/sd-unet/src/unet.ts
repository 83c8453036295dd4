import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, GroupNorm, Linear, Module, ModuleList, NnError, silu } from '@codiff/nn';
import { ResnetBlock2D } from './resnet.js';
import { Downsample2D, Upsample2D } from './sampling.js';
import { Transformer2DModel } from './transformer.js';

/** The UNet2DConditionModel fields of a diffusers `config.json` we support; defaults are SD 2.1-base's. */
export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  /** Heads per block (diffusers' SD2 `attention_head_dim` is really the number of heads). */
  heads: number[];
  crossAttentionDim: number;
  normNumGroups: number;
  normEps: number;
  /** Which down blocks have cross-attention (CrossAttnDownBlock2D); up blocks mirror them. */
  crossAttention: boolean[];
  useLinearProjection: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  transformerLayersPerBlock: number;
}

export const SD21_UNET_CONFIG: UNetConfig = {
  inChannels: 4,
  outChannels: 4,
  blockOutChannels: [320, 640, 1280, 1280],
  layersPerBlock: 2,
  heads: [5, 10, 20, 20],
  crossAttentionDim: 1024,
  normNumGroups: 32,
  normEps: 1e-5,
  crossAttention: [true, true, true, false],
  useLinearProjection: true,
  flipSinToCos: true,
  freqShift: 0,
  transformerLayersPerBlock: 1,
};

/** Read a diffusers UNet2DConditionModel `config.json`; options we do not implement are rejected by name. */
export function unetConfigFromDiffusers(json: Record<string, unknown>): UNetConfig {
  const d = SD21_UNET_CONFIG;
  const unsupported = (key: string, ok: (v: unknown) => boolean) => {
    if (json[key] !== undefined && !ok(json[key])) throw new NnError(`UNet option ${key}=${JSON.stringify(json[key])} is not supported`);
  };
  unsupported('class_embed_type', (v) => v === null);
  unsupported('addition_embed_type', (v) => v === null);
  unsupported('time_embedding_type', (v) => v === 'positional');
  unsupported('mid_block_type', (v) => v === 'UNetMidBlock2DCrossAttn');
  unsupported('only_cross_attention', (v) => v === false);
  unsupported('resnet_time_scale_shift', (v) => v === 'default');
  unsupported('act_fn', (v) => v === 'silu');
  unsupported('encoder_hid_dim', (v) => v === null);
  unsupported('time_cond_proj_dim', (v) => v === null);
  unsupported('transformer_layers_per_block', (v) => typeof v === 'number');
  const blocks = (json.block_out_channels as number[]) ?? d.blockOutChannels;
  const down = (json.down_block_types as string[]) ?? ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'];
  const up = (json.up_block_types as string[]) ?? ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'];
  const crossAttention = down.map((t) => {
    if (t !== 'CrossAttnDownBlock2D' && t !== 'DownBlock2D') throw new NnError(`UNet down block ${t} is not supported`);
    return t === 'CrossAttnDownBlock2D';
  });
  const mirrored = [...crossAttention].reverse().map((c) => (c ? 'CrossAttnUpBlock2D' : 'UpBlock2D'));
  if (up.length !== mirrored.length || up.some((t, i) => t !== mirrored[i])) {
    throw new NnError(`UNet up blocks ${up.join(', ')} do not mirror the down blocks`);
  }
  const headsField = json.num_attention_heads ?? json.attention_head_dim ?? d.heads;
  const heads = Array.isArray(headsField) ? (headsField as number[]) : blocks.map(() => headsField as number);
  return {
    inChannels: (json.in_channels as number) ?? d.inChannels,
    outChannels: (json.out_channels as number) ?? d.outChannels,
    blockOutChannels: blocks,
    layersPerBlock: (json.layers_per_block as number) ?? d.layersPerBlock,
    heads,
    crossAttentionDim: (json.cross_attention_dim as number) ?? d.crossAttentionDim,
    normNumGroups: (json.norm_num_groups as number) ?? d.normNumGroups,
    normEps: (json.norm_eps as number) ?? d.normEps,
    crossAttention,
    useLinearProjection: (json.use_linear_projection as boolean) ?? d.useLinearProjection,
    flipSinToCos: (json.flip_sin_to_cos as boolean) ?? d.flipSinToCos,
    freqShift: (json.freq_shift as number) ?? d.freqShift,
    transformerLayersPerBlock: (json.transformer_layers_per_block as number) ?? d.transformerLayersPerBlock,
  };
}

/** The diffusers `config.json` of a UNet configuration (inverse of `unetConfigFromDiffusers`), for saving a trained one. */
export function unetConfigToDiffusers(c: UNetConfig): Record<string, unknown> {
  return {
    _class_name: 'UNet2DConditionModel',
    in_channels: c.inChannels,
    out_channels: c.outChannels,
    block_out_channels: c.blockOutChannels,
    layers_per_block: c.layersPerBlock,
    attention_head_dim: c.heads,
    cross_attention_dim: c.crossAttentionDim,
    norm_num_groups: c.normNumGroups,
    norm_eps: c.normEps,
    down_block_types: c.crossAttention.map((x) => (x ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    up_block_types: [...c.crossAttention].reverse().map((x) => (x ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    use_linear_projection: c.useLinearProjection,
    flip_sin_to_cos: c.flipSinToCos,
    freq_shift: c.freqShift,
    transformer_layers_per_block: c.transformerLayersPerBlock,
  };
}

/**
 * Sinusoidal timestep features (diffusers get_timestep_embedding), in float32 as diffusers computes them:
 * freq_k = exp(−ln(10000)·k / (half − shift)); [sin, cos] or, with flipSinToCos, [cos, sin].
 */
export function timestepFeatures(timesteps: readonly number[], dim: number, flipSinToCos: boolean, freqShift: number): Float32Array {
  const half = dim / 2;
  const out = new Float32Array(timesteps.length * dim);
  const f = Math.fround;
  for (let b = 0; b < timesteps.length; b++) {
    for (let k = 0; k < half; k++) {
      const freq = f(Math.exp(f(f(-Math.log(10000) * k) / (half - freqShift))));
      const arg = f(timesteps[b] * freq);
      const [first, second] = flipSinToCos ? [Math.cos(arg), Math.sin(arg)] : [Math.sin(arg), Math.cos(arg)];
      out[b * dim + k] = first;
      out[b * dim + half + k] = second;
    }
  }
  return out;
}

class TimestepEmbedding extends Module {
  readonly linear1: Linear;
  readonly linear2: Linear;
  constructor(inDim: number, dim: number) {
    super();
    this.linear1 = this.child('linear_1', new Linear(inDim, dim));
    this.linear2 = this.child('linear_2', new Linear(dim, dim));
  }
  forward(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => this.linear2.forward(silu(this.linear1.forward(x)) as tf.Tensor2D));
  }
}

interface BlockContext {
  temb: tf.Tensor2D;
  context: tf.Tensor3D;
}

/** CrossAttnDownBlock2D / DownBlock2D: (resnet, attention?) × layers, then an optional downsampler. */
class DownBlock extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<Transformer2DModel> | undefined;
  readonly downsamplers: ModuleList<Downsample2D> | undefined;
  constructor(c: UNetConfig, inC: number, outC: number, temb: number, heads: number, cross: boolean, downsample: boolean) {
    super();
    const layers = c.layersPerBlock;
    this.resnets = this.child(
      'resnets',
      new ModuleList(Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inC : outC, outC, { groups: c.normNumGroups, eps: c.normEps, tembChannels: temb }))),
    );
    this.attentions = cross
      ? this.child('attentions', new ModuleList(Array.from({ length: layers }, () => transformer(c, outC, heads))))
      : undefined;
    this.downsamplers = downsample ? this.child('downsamplers', new ModuleList([new Downsample2D(outC, 1)])) : undefined;
  }
  /** Returns the output and the residuals the up path consumes (one per resnet, plus the downsampled output). */
  forward(x: tf.Tensor4D, ctx: BlockContext): { out: tf.Tensor4D; residuals: tf.Tensor4D[] } {
    const residuals: tf.Tensor4D[] = [];
    let h = x;
    this.resnets.items.forEach((r, i) => {
      h = tf.tidy(() => {
        const y = r.forward(h, ctx.temb);
        return this.attentions ? this.attentions.items[i].forward(y, ctx.context) : y;
      });
      residuals.push(h);
    });
    if (this.downsamplers) {
      h = this.downsamplers.items[0].forward(h);
      residuals.push(h);
    }
    return { out: h, residuals };
  }
}

/** CrossAttnUpBlock2D / UpBlock2D: each resnet takes the hidden state concatenated with a skip residual. */
class UpBlock extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<Transformer2DModel> | undefined;
  readonly upsamplers: ModuleList<Upsample2D> | undefined;
  constructor(c: UNetConfig, inC: number, outC: number, prevOutC: number, temb: number, heads: number, cross: boolean, upsample: boolean) {
    super();
    const layers = c.layersPerBlock + 1;
    this.resnets = this.child(
      'resnets',
      new ModuleList(
        Array.from({ length: layers }, (_, i) => {
          const skip = i === layers - 1 ? inC : outC;
          const resIn = i === 0 ? prevOutC : outC;
          return new ResnetBlock2D(resIn + skip, outC, { groups: c.normNumGroups, eps: c.normEps, tembChannels: temb });
        }),
      ),
    );
    this.attentions = cross
      ? this.child('attentions', new ModuleList(Array.from({ length: layers }, () => transformer(c, outC, heads))))
      : undefined;
    this.upsamplers = upsample ? this.child('upsamplers', new ModuleList([new Upsample2D(outC)])) : undefined;
  }
  /** `skips` are consumed from the end; `upsampleSize` is the spatial size the upsampler must produce. */
  forward(x: tf.Tensor4D, skips: tf.Tensor4D[], ctx: BlockContext, upsampleSize?: [number, number]): tf.Tensor4D {
    return tf.tidy(() => {
      let h = x;
      this.resnets.items.forEach((r, i) => {
        h = r.forward(tf.concat([h, skips.pop()!], 3) as tf.Tensor4D, ctx.temb);
        if (this.attentions) h = this.attentions.items[i].forward(h, ctx.context);
      });
      return this.upsamplers ? this.upsamplers.items[0].forward(h, upsampleSize) : h;
    });
  }
}

class MidBlock extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<Transformer2DModel>;
  constructor(c: UNetConfig, channels: number, temb: number, heads: number) {
    super();
    const resnet = () => new ResnetBlock2D(channels, channels, { groups: c.normNumGroups, eps: c.normEps, tembChannels: temb });
    this.resnets = this.child('resnets', new ModuleList([resnet(), resnet()]));
    this.attentions = this.child('attentions', new ModuleList([transformer(c, channels, heads)]));
  }
  forward(x: tf.Tensor4D, ctx: BlockContext): tf.Tensor4D {
    return tf.tidy(() => {
      const h = this.attentions.items[0].forward(this.resnets.items[0].forward(x, ctx.temb), ctx.context);
      return this.resnets.items[1].forward(h, ctx.temb);
    });
  }
}

function transformer(c: UNetConfig, channels: number, heads: number): Transformer2DModel {
  return new Transformer2DModel(channels, heads, {
    crossAttentionDim: c.crossAttentionDim,
    groups: c.normNumGroups,
    layers: c.transformerLayersPerBlock,
    linearProjection: c.useLinearProjection,
  });
}

/** diffusers UNet2DConditionModel (SD 1.x/2.x layout). Activations are NHWC; tokens are [B, S, C]. */
export class UNet2DConditionModel extends Module {
  readonly convIn: Conv2d;
  readonly timeEmbedding: TimestepEmbedding;
  readonly downBlocks: ModuleList<DownBlock>;
  readonly midBlock: MidBlock;
  /** Absent in an encoder-only UNet (see the constructor). */
  readonly upBlocks: ModuleList<UpBlock> | undefined;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d | undefined;

  /**
   * `encoderOnly` builds conv_in, the time embedding, the down and mid blocks (and conv_norm_out, which diffusers-based
   * discriminators keep) without the up blocks and conv_out: what `encode` needs, e.g. for a UNet discriminator.
   */
  constructor(
    readonly config: UNetConfig = SD21_UNET_CONFIG,
    options: { encoderOnly?: boolean } = {},
  ) {
    super();
    const ch = config.blockOutChannels;
    const temb = ch[0] * 4;
    const n = ch.length;
    this.convIn = this.child('conv_in', new Conv2d(config.inChannels, ch[0], 3, { padding: 1 }));
    this.timeEmbedding = this.child('time_embedding', new TimestepEmbedding(ch[0], temb));
    this.downBlocks = this.child(
      'down_blocks',
      new ModuleList(ch.map((out, i) => new DownBlock(config, i === 0 ? ch[0] : ch[i - 1], out, temb, config.heads[i], config.crossAttention[i], i < n - 1))),
    );
    this.midBlock = this.child('mid_block', new MidBlock(config, ch[n - 1], temb, config.heads[n - 1]));
    const rev = [...ch].reverse();
    const revHeads = [...config.heads].reverse();
    const revCross = [...config.crossAttention].reverse();
    this.upBlocks = options.encoderOnly ? undefined : this.child(
      'up_blocks',
      new ModuleList(
        rev.map((out, i) => {
          const prevOut = i === 0 ? rev[0] : rev[i - 1];
          const inC = rev[Math.min(i + 1, n - 1)];
          return new UpBlock(config, inC, out, prevOut, temb, revHeads[i], revCross[i], i < n - 1);
        }),
      ),
    );
    this.convNormOut = this.child('conv_norm_out', new GroupNorm(config.normNumGroups, ch[0], config.normEps));
    this.convOut = options.encoderOnly ? undefined : this.child('conv_out', new Conv2d(ch[0], config.outChannels, 3, { padding: 1 }));
  }

  /** The time embedding (time_proj → time_embedding) for integer timesteps, one per batch element. */
  embedTimesteps(timesteps: readonly number[]): tf.Tensor2D {
    const dim = this.config.blockOutChannels[0];
    return tf.tidy(() => {
      const features = tf.tensor2d(timestepFeatures(timesteps, dim, this.config.flipSinToCos, this.config.freqShift), [timesteps.length, dim]);
      return this.timeEmbedding.forward(features);
    });
  }

  /**
   * Predict noise for latents `sample` [B, H, W, C] at `timesteps` (a number for all, or one per element), given
   * `encoderHiddenStates` [B, S, crossAttentionDim].
   */
  forward(sample: tf.Tensor4D, timesteps: number | readonly number[], encoderHiddenStates: tf.Tensor3D): tf.Tensor4D {
    const { upBlocks, convOut } = this;
    if (!upBlocks || !convOut) throw new NnError('this UNet was built encoder-only: use encode()');
    return tf.tidy(() => {
      const { ctx, h: mid, skips } = this.runEncoder(sample, timesteps, encoderHiddenStates);
      let h = mid;
      const ups = upBlocks.items;
      ups.forEach((block, i) => {
        const blockSkips = skips.splice(skips.length - block.resnets.items.length);
        // The upsampler must land on the next block's skip size (odd latent sizes round differently).
        const next = skips[skips.length - 1];
        const size: [number, number] | undefined = i < ups.length - 1 && next ? [next.shape[1], next.shape[2]] : undefined;
        h = block.forward(h, blockSkips, ctx, size);
      });
      return convOut.forward(silu(this.convNormOut.forward(h)) as tf.Tensor4D);
    });
  }

  /** conv_in → down blocks → mid block: the mid block's output [B, h/2^(n−1), w/2^(n−1), C_last]. */
  encode(sample: tf.Tensor4D, timesteps: number | readonly number[], encoderHiddenStates: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => this.runEncoder(sample, timesteps, encoderHiddenStates).h);
  }

  private runEncoder(sample: tf.Tensor4D, timesteps: number | readonly number[], encoderHiddenStates: tf.Tensor3D) {
    const batch = sample.shape[0];
    const ts = typeof timesteps === 'number' ? new Array<number>(batch).fill(timesteps) : timesteps;
    if (ts.length !== batch) throw new NnError(`${ts.length} timesteps for a batch of ${batch}`);
    if (encoderHiddenStates.shape[0] !== batch || encoderHiddenStates.shape[2] !== this.config.crossAttentionDim) {
      throw new NnError(`encoder hidden states ${JSON.stringify(encoderHiddenStates.shape)} do not fit batch ${batch} × ${this.config.crossAttentionDim}`);
    }
    const ctx: BlockContext = { temb: this.embedTimesteps(ts), context: encoderHiddenStates };
    let h = this.convIn.forward(sample);
    const skips: tf.Tensor4D[] = [h];
    for (const block of this.downBlocks.items) {
      const { out, residuals } = block.forward(h, ctx);
      skips.push(...residuals);
      h = out;
    }
    return { ctx, h: this.midBlock.forward(h, ctx), skips };
  }
}
