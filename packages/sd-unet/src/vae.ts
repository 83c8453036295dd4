import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, GroupNorm, Module, ModuleList, NnError, silu } from '@codiff/nn';
import { Attention } from './attention.js';
import { ResnetBlock2D } from './resnet.js';
import { Downsample2D, Upsample2D } from './sampling.js';

/** The AutoencoderKL fields of a diffusers `config.json` we use; defaults are SD 2.1-base's. */
export interface AutoencoderKLConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  normNumGroups: number;
  scalingFactor: number;
}

export const SD21_VAE_CONFIG: AutoencoderKLConfig = {
  inChannels: 3,
  outChannels: 3,
  latentChannels: 4,
  blockOutChannels: [128, 256, 512, 512],
  layersPerBlock: 2,
  normNumGroups: 32,
  scalingFactor: 0.18215,
};

/** Read a diffusers AutoencoderKL `config.json` (SD 2.1-base values where a field is absent). */
export function vaeConfigFromDiffusers(json: Record<string, unknown>): AutoencoderKLConfig {
  const d = SD21_VAE_CONFIG;
  const down = json.down_block_types as string[] | undefined;
  if (down && down.some((t) => t !== 'DownEncoderBlock2D')) throw new NnError(`unsupported VAE down blocks: ${down.join(', ')}`);
  const up = json.up_block_types as string[] | undefined;
  if (up && up.some((t) => t !== 'UpDecoderBlock2D')) throw new NnError(`unsupported VAE up blocks: ${up.join(', ')}`);
  if (json.act_fn !== undefined && json.act_fn !== 'silu') throw new NnError(`unsupported VAE act_fn ${String(json.act_fn)}`);
  return {
    inChannels: (json.in_channels as number) ?? d.inChannels,
    outChannels: (json.out_channels as number) ?? d.outChannels,
    latentChannels: (json.latent_channels as number) ?? d.latentChannels,
    blockOutChannels: (json.block_out_channels as number[]) ?? d.blockOutChannels,
    layersPerBlock: (json.layers_per_block as number) ?? d.layersPerBlock,
    normNumGroups: (json.norm_num_groups as number) ?? d.normNumGroups,
    scalingFactor: (json.scaling_factor as number) ?? d.scalingFactor,
  };
}

const VAE_EPS = 1e-6;

/** `layers` VAE resnets, the first taking `inC` channels. */
function resnetStack(inC: number, outC: number, layers: number, groups: number): ModuleList<ResnetBlock2D> {
  return new ModuleList(Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inC : outC, outC, { groups, eps: VAE_EPS })));
}

/** UNetMidBlock2D as the VAE uses it: resnet, single-head spatial attention, resnet. */
class VaeMidBlock extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly attentions: ModuleList<Attention>;
  constructor(channels: number, groups: number) {
    super();
    const resnet = () => new ResnetBlock2D(channels, channels, { groups, eps: VAE_EPS });
    this.resnets = this.child('resnets', new ModuleList([resnet(), resnet()]));
    this.attentions = this.child(
      'attentions',
      new ModuleList([new Attention(channels, { heads: 1, dimHead: channels, qkvBias: true, groupNorm: { groups, eps: VAE_EPS } })]),
    );
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const h = this.attentions.items[0].forwardSpatial(this.resnets.items[0].forward(x));
      return this.resnets.items[1].forward(h);
    });
  }
}

class DownEncoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly downsamplers: ModuleList<Downsample2D> | undefined;
  constructor(inC: number, outC: number, layers: number, groups: number, downsample: boolean) {
    super();
    this.resnets = this.child('resnets', resnetStack(inC, outC, layers, groups));
    this.downsamplers = downsample ? this.child('downsamplers', new ModuleList([new Downsample2D(outC, 0)])) : undefined;
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = x;
      for (const r of this.resnets.items) h = r.forward(h);
      return this.downsamplers ? this.downsamplers.items[0].forward(h) : h;
    });
  }
}

class UpDecoderBlock2D extends Module {
  readonly resnets: ModuleList<ResnetBlock2D>;
  readonly upsamplers: ModuleList<Upsample2D> | undefined;
  constructor(inC: number, outC: number, layers: number, groups: number, upsample: boolean) {
    super();
    this.resnets = this.child('resnets', resnetStack(inC, outC, layers, groups));
    this.upsamplers = upsample ? this.child('upsamplers', new ModuleList([new Upsample2D(outC)])) : undefined;
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = x;
      for (const r of this.resnets.items) h = r.forward(h);
      return this.upsamplers ? this.upsamplers.items[0].forward(h) : h;
    });
  }
}

export class VaeEncoder extends Module {
  readonly convIn: Conv2d;
  readonly downBlocks: ModuleList<DownEncoderBlock2D>;
  readonly midBlock: VaeMidBlock;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;
  constructor(c: AutoencoderKLConfig) {
    super();
    const ch = c.blockOutChannels;
    const g = c.normNumGroups;
    this.convIn = this.child('conv_in', new Conv2d(c.inChannels, ch[0], 3, { padding: 1 }));
    this.downBlocks = this.child(
      'down_blocks',
      new ModuleList(ch.map((out, i) => new DownEncoderBlock2D(i === 0 ? ch[0] : ch[i - 1], out, c.layersPerBlock, g, i < ch.length - 1))),
    );
    this.midBlock = this.child('mid_block', new VaeMidBlock(ch[ch.length - 1], g));
    this.convNormOut = this.child('conv_norm_out', new GroupNorm(g, ch[ch.length - 1], VAE_EPS));
    this.convOut = this.child('conv_out', new Conv2d(ch[ch.length - 1], 2 * c.latentChannels, 3, { padding: 1 }));
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = this.convIn.forward(x);
      for (const b of this.downBlocks.items) h = b.forward(h);
      h = this.midBlock.forward(h);
      return this.convOut.forward(silu(this.convNormOut.forward(h)) as tf.Tensor4D);
    });
  }
}

export class VaeDecoder extends Module {
  readonly convIn: Conv2d;
  readonly midBlock: VaeMidBlock;
  readonly upBlocks: ModuleList<UpDecoderBlock2D>;
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;
  constructor(c: AutoencoderKLConfig) {
    super();
    const rev = [...c.blockOutChannels].reverse();
    const g = c.normNumGroups;
    this.convIn = this.child('conv_in', new Conv2d(c.latentChannels, rev[0], 3, { padding: 1 }));
    this.midBlock = this.child('mid_block', new VaeMidBlock(rev[0], g));
    this.upBlocks = this.child(
      'up_blocks',
      new ModuleList(rev.map((out, i) => new UpDecoderBlock2D(i === 0 ? rev[0] : rev[i - 1], out, c.layersPerBlock + 1, g, i < rev.length - 1))),
    );
    this.convNormOut = this.child('conv_norm_out', new GroupNorm(g, c.blockOutChannels[0], VAE_EPS));
    this.convOut = this.child('conv_out', new Conv2d(c.blockOutChannels[0], c.outChannels, 3, { padding: 1 }));
  }
  forward(z: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = this.midBlock.forward(this.convIn.forward(z));
      for (const b of this.upBlocks.items) h = b.forward(h);
      return this.convOut.forward(silu(this.convNormOut.forward(h)) as tf.Tensor4D);
    });
  }
}

/** The diagonal Gaussian `latent_dist` of an encoding (NHWC). Owns its tensors: dispose() when done. */
export interface LatentDistribution {
  /** quant_conv output: mean and logvar concatenated on channels, before clamping. */
  moments: tf.Tensor4D;
  mean: tf.Tensor4D;
  /** Clamped to [−30, 20] as diffusers does. */
  logvar: tf.Tensor4D;
  std: tf.Tensor4D;
}

/** diffusers AutoencoderKL. Images and latents are NHWC; encode/decode do not apply `scalingFactor`. */
export class AutoencoderKL extends Module {
  readonly encoder: VaeEncoder;
  readonly decoder: VaeDecoder;
  readonly quantConv: Conv2d;
  readonly postQuantConv: Conv2d;

  constructor(readonly config: AutoencoderKLConfig = SD21_VAE_CONFIG) {
    super();
    const l = config.latentChannels;
    this.encoder = this.child('encoder', new VaeEncoder(config));
    this.decoder = this.child('decoder', new VaeDecoder(config));
    this.quantConv = this.child('quant_conv', new Conv2d(2 * l, 2 * l, 1));
    this.postQuantConv = this.child('post_quant_conv', new Conv2d(l, l, 1));
  }

  /** Image in [−1, 1], [B, H, W, 3] → latent distribution [B, H/8, W/8, latent] (for SD's 4 blocks). */
  encode(x: tf.Tensor4D): LatentDistribution {
    const moments = tf.tidy(() => this.quantConv.forward(this.encoder.forward(x)));
    const [mean, rawLogvar] = tf.split(moments, 2, 3) as [tf.Tensor4D, tf.Tensor4D];
    const logvar = tf.clipByValue(rawLogvar, -30, 20) as tf.Tensor4D;
    rawLogvar.dispose();
    const std = tf.tidy(() => tf.exp(tf.mul(logvar, 0.5)) as tf.Tensor4D);
    return { moments, mean, logvar, std };
  }

  /** mean + std·ε with ε ~ N(0, 1) (seeded when `seed` is given). */
  sample(dist: LatentDistribution, seed?: number): tf.Tensor4D {
    return tf.tidy(() => tf.add(dist.mean, tf.mul(dist.std, tf.randomNormal(dist.mean.shape, 0, 1, 'float32', seed))));
  }

  decode(z: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.decoder.forward(this.postQuantConv.forward(z)));
  }
}
