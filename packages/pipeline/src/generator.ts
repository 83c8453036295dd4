import * as tf from '@tensorflow/tfjs-core';
import type { CaVE } from '@codiff/cave';
import { LoraModel } from '@codiff/lora';
import { Linear, type HostTensor, type Parameter } from '@codiff/nn';
import { oneStepCoefficients, type AutoencoderKL, type UNet2DConditionModel } from '@codiff/sd-unet';
import { hasAdapters, NO_ADAPTERS, officialAdapterModules, UNET_ADAPTERS, VAE_ADAPTER, type AdapterModules } from './adapters.js';
import { DEFAULT_LORA_ALPHA, type CodiffCheckpoint } from './checkpoint.js';
import { PipelineError } from './errors.js';
import { PixelUnshuffleAutoencoder } from './pixel-unshuffle.js';
import type { LumaPostFilter } from './postfilter.js';

/** CODiff's fixed diffusion timestep: the one step runs at t = 499. */
export const CODIFF_TIMESTEP = 499;

/** The pretrained networks a generator is built on. It owns them from then on (dispose() frees them). */
export interface GeneratorParts {
  readonly unet: UNet2DConditionModel;
  /** SD's VAE, or codiff-lite's parameter-free pixel-unshuffle stand-in. */
  readonly vae: AutoencoderKL | PixelUnshuffleAutoencoder;
  /** Frozen, in eval mode: it only supplies the conditioning tokens. */
  readonly cave: CaVE;
  /** A model folder's learned luma post-filter (codiff-lite), which `restoreImage` runs after the smoothing on request (`postFilter`). */
  readonly postFilter?: LumaPostFilter;
}

/**
 * What training changes: `lora` (CODiff: adapters on the pretrained UNet and VAE encoder, conv_in and proj fully
 * trained) or `full` (codiff-lite: a UNet trained from scratch, every parameter, and proj; no adapters).
 */
export type UNetTraining = 'lora' | 'full';

export interface GeneratorOptions {
  /** Default `lora`. */
  readonly training?: UNetTraining;
  /** LoRA placement (default: the official lists computed from the models; none for `full`). */
  readonly modules?: AdapterModules;
  /** LoRA ranks of the UNet and VAE adapters (official: 16) and their alpha (peft's default, 8). */
  readonly rankUnet?: number;
  readonly rankVae?: number;
  readonly loraAlpha?: number;
  readonly timestep?: number;
  /**
   * ε = UNet(z) + κ·z with κ = (1 − √ᾱ)/√(1−ᾱ): a UNet output of zero then gives x̂0 = z, the JPEG itself, so a UNet
   * trained from scratch starts from the input instead of from noise (codiff-lite; off for CODiff, as the official).
   */
  readonly residual?: boolean;
}

export interface GenerateOptions {
  /**
   * N(0, 1) noise [B, h, w, latent] for `latent_dist.sample()` (the official training path). Without it the latent
   * is the distribution's mean, which is deterministic: the default for restoring.
   */
  readonly noise?: tf.Tensor4D;
}

/** Every stage of one generator pass (NHWC; caller disposes). */
export interface GeneratorOutput {
  /** CaVE tokens [B, N, C] and their projection, the UNet's encoder hidden states [B, N, cross_attention_dim]. */
  readonly tokens: tf.Tensor3D;
  readonly context: tf.Tensor3D;
  /** Scaled latent of the JPEG, the UNet's noise prediction and the one-step clean latent x̂0. */
  readonly z: tf.Tensor4D;
  readonly eps: tf.Tensor4D;
  readonly x0: tf.Tensor4D;
  /** VAE decoder output, and the same clamped to [−1, 1] (the restored image is image·0.5 + 0.5). */
  readonly decoded: tf.Tensor4D;
  readonly image: tf.Tensor4D;
}

/**
 * CODiff's one-step generator, as the official `CODiff_train`/`CODiff_test`: CaVE tokens → `proj` → encoder hidden
 * states; z = VAE.encode(LQ·2 − 1)·sf; ε = UNet(z, 499, states); x̂0 = (z − √(1−ᾱ)·ε)/√ᾱ; image = VAE.decode(x̂0/sf).
 * LoRA sits where the official code puts it — three UNet adapters (`default_encoder`: down blocks and conv_in;
 * `default_decoder`: up blocks and conv_out; `default_others`: the mid block) and one on the VAE encoder and
 * quant_conv — all active at once (as the official scripts set them before training and after loading).
 */
export class CodiffGenerator {
  readonly unet: UNet2DConditionModel;
  readonly vae: AutoencoderKL | PixelUnshuffleAutoencoder;
  readonly cave: CaVE;
  readonly postFilter: LumaPostFilter | undefined;
  readonly training: UNetTraining;
  /** Linear(CaVE channels → cross_attention_dim). */
  readonly proj: Linear;
  readonly unetLora: LoraModel;
  readonly vaeLora: LoraModel;
  readonly modules: AdapterModules;
  readonly rankUnet: number;
  readonly rankVae: number;
  readonly loraAlpha: number;
  readonly timestep: number;
  readonly residual: boolean;
  private readonly sqrtAlphaBar: number;
  private readonly sqrtOneMinusAlphaBar: number;

  constructor(parts: GeneratorParts, options: GeneratorOptions = {}) {
    ({ unet: this.unet, vae: this.vae, cave: this.cave, postFilter: this.postFilter } = parts);
    this.cave.eval();
    this.training = options.training ?? 'lora';
    if (this.training === 'full' && options.modules && hasAdapters(options.modules)) throw new PipelineError('a fully trained UNet takes no LoRA adapters');
    this.modules = options.modules ?? (this.training === 'full' ? NO_ADAPTERS : officialAdapterModules(this.unet, this.vae));
    this.rankUnet = options.rankUnet ?? 16;
    this.rankVae = options.rankVae ?? 16;
    this.loraAlpha = options.loraAlpha ?? DEFAULT_LORA_ALPHA;
    this.timestep = options.timestep ?? CODIFF_TIMESTEP;
    ({ sqrtAlphaBar: this.sqrtAlphaBar, sqrtOneMinusAlphaBar: this.sqrtOneMinusAlphaBar } = oneStepCoefficients(this.timestep));
    this.residual = options.residual ?? false;
    this.proj = new Linear(this.cave.config.channels[3], this.unet.config.crossAttentionDim);
    this.unetLora = new LoraModel(this.unet);
    this.vaeLora = new LoraModel(this.vae);
    const { unetEncoder, unetDecoder, unetOthers, vaeEncoder } = this.modules;
    [unetEncoder, unetDecoder, unetOthers].forEach((paths, i) => this.attach(this.unetLora, UNET_ADAPTERS[i], paths, this.rankUnet));
    this.attach(this.vaeLora, VAE_ADAPTER, vaeEncoder, this.rankVae);
  }

  private attach(lora: LoraModel, name: string, paths: readonly string[], r: number): void {
    if (paths.length > 0) lora.addAdapter(name, { r, alpha: this.loraAlpha, targetModules: paths });
  }

  /** A generator with a trained checkpoint's adapters, conv_in and proj (strict: every tensor must fit). */
  static fromCheckpoint(parts: GeneratorParts, checkpoint: CodiffCheckpoint): CodiffGenerator {
    const g = new CodiffGenerator(parts, {
      training: hasAdapters(checkpoint.modules) ? 'lora' : 'full',
      residual: checkpoint.residual,
      modules: checkpoint.modules,
      rankUnet: checkpoint.rankUnet,
      rankVae: checkpoint.rankVae,
      loraAlpha: checkpoint.loraAlpha,
    });
    g.loadCheckpoint(checkpoint);
    return g;
  }

  /** Copy a checkpoint's tensors in; missing, unexpected or mis-shaped tensors are named and nothing is half-loaded. */
  loadCheckpoint(checkpoint: CodiffCheckpoint): void {
    const unet = new Map<string, HostTensor>(), vae = new Map<string, HostTensor>(), proj = new Map<string, HostTensor>(), convIn = new Map<string, HostTensor>();
    for (const [key, t] of checkpoint.tensors) {
      if (key.startsWith('state_dict_unet.conv_in.base_layer.')) convIn.set(key.slice('state_dict_unet.conv_in.base_layer.'.length), t);
      else if (key.startsWith('state_dict_unet.')) unet.set(key.slice('state_dict_unet.'.length), t);
      else if (key.startsWith('state_dict_vae.')) vae.set(key.slice('state_dict_vae.'.length), t);
      else if (key.startsWith('proj.')) proj.set(key.slice('proj.'.length), t);
      else throw new PipelineError(`unexpected checkpoint tensor ${key}`);
    }
    type Part = [string, { checkStateDict(d: ReadonlyMap<string, HostTensor>): void; loadStateDict(d: ReadonlyMap<string, HostTensor>): unknown }, Map<string, HostTensor>];
    // A fully trained UNet (conv_in included) comes from its own folder: its checkpoint holds proj alone.
    const parts: Part[] = [
      ['state_dict_unet (LoRA)', this.unetLora, unet],
      ...(this.training === 'lora' ? [['state_dict_unet (conv_in.base_layer)', this.unet.convIn, convIn] as Part] : []),
      ['state_dict_vae', this.vaeLora, vae],
      ['proj', this.proj, proj],
    ];
    if (this.training === 'full' && convIn.size > 0) throw new PipelineError('checkpoint has conv_in.base_layer tensors, but its UNet is fully trained (no adapters)');
    for (const [what, module, dict] of parts) {
      try {
        module.checkStateDict(dict);
      } catch (e) {
        throw new PipelineError(`checkpoint ${what}: ${(e as Error).message}`);
      }
    }
    for (const [, module, dict] of parts) module.loadStateDict(dict);
  }

  /**
   * One pass on a batch of JPEG images `lq` [B, H, W, 3] in [0, 1] (H and W multiples of 8). Every stage is
   * returned; dispose them.
   */
  forward(lq: tf.Tensor4D, options: GenerateOptions = {}): GeneratorOutput {
    const [, h, w, c] = lq.shape;
    if (c !== 3 || h % 8 !== 0 || w % 8 !== 0) {
      throw new PipelineError(`the generator takes RGB images whose sides are multiples of 8 (got ${h}×${w}×${c}); pad them first`);
    }
    return tf.tidy(() => {
      const { tokens, context } = this.conditioning(lq);
      const z = this.encode(lq, options.noise);
      const eps = this.predictNoise(z, context);
      const x0 = this.denoise(z, eps);
      const decoded = this.decode(x0);
      const image = tf.clipByValue(decoded, -1, 1) as tf.Tensor4D;
      return { tokens, context, z, eps, x0, decoded, image };
    });
  }

  /** CaVE tokens of the JPEG (in [0, 1]) and their projection to the UNet's cross-attention width. */
  conditioning(lq: tf.Tensor4D): { tokens: tf.Tensor3D; context: tf.Tensor3D } {
    return tf.tidy(() => {
      const tokens = this.cave.embed(lq);
      return { tokens, context: this.proj.forward(tokens) };
    });
  }

  /** The scaled latent z = VAE.encode(lq·2 − 1)·sf: the mean, or mean + std·noise when noise is given. */
  encode(lq: tf.Tensor4D, noise?: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const dist = this.vae.encode(tf.sub(tf.mul(lq, 2), 1) as tf.Tensor4D);
      const latent = noise ? tf.add(dist.mean, tf.mul(dist.std, noise)) : dist.mean;
      return tf.mul(latent, this.vae.config.scalingFactor) as tf.Tensor4D;
    });
  }

  /**
   * Side in pixels of the image block one latent position covers: 2^(down blocks − 1) for SD's VAE (8), the
   * stand-in's factor.
   */
  get pixelsPerLatent(): number {
    return this.vae instanceof PixelUnshuffleAutoencoder ? this.vae.config.factor : 2 ** (this.vae.config.blockOutChannels.length - 1);
  }

  /** The noise prediction ε at the generator's timestep (with the input skip of a `residual` generator). */
  predictNoise(z: tf.Tensor4D, context: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => {
      const eps = this.unet.forward(z, this.timestep, context);
      return this.residual ? (tf.add(eps, tf.mul(z, (1 - this.sqrtAlphaBar) / this.sqrtOneMinusAlphaBar)) as tf.Tensor4D) : eps;
    });
  }

  /** x̂0 = (z − √(1−ᾱ)·ε)/√ᾱ: the DDPM step from t = 499 to the clean latent (its 1e-10 noise term left out). */
  denoise(z: tf.Tensor4D, eps: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.div(tf.sub(z, tf.mul(eps, this.sqrtOneMinusAlphaBar)), this.sqrtAlphaBar) as tf.Tensor4D);
  }

  /** VAE.decode(x̂0 / sf), unclamped. */
  decode(x0: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.vae.decode(tf.div(x0, this.vae.config.scalingFactor) as tf.Tensor4D));
  }

  /**
   * The trained tensors as a checkpoint in the official layout (`state_dict_unet.*` with `conv_in.base_layer.*`,
   * `state_dict_vae.*`, `proj.*`), ready for `saveCodiffCheckpoint`. Not after `mergeAdapters`. For a `full`
   * generator it holds `proj.*` only: the UNet is saved as a diffusers folder (`saveCodiffModel`).
   */
  async toCheckpoint(): Promise<CodiffCheckpoint> {
    const merged = [...this.unetLora.layers.values(), ...this.vaeLora.layers.values()].some((l) => l.merged.size > 0);
    if (merged) throw new PipelineError('the adapters are merged into the weights: a checkpoint needs them separate');
    const tensors = new Map<string, HostTensor>();
    const official = (name: string) => name.replace(/^unet\./, 'state_dict_unet.').replace(/^vae\./, 'state_dict_vae.');
    for (const [name, p] of this.trainableParameters()) if (this.training === 'lora' || name.startsWith('proj.')) tensors.set(official(name), await p.toHost());
    return { modules: this.modules, rankUnet: this.rankUnet, rankVae: this.rankVae, loraAlpha: this.loraAlpha, ...(this.residual ? { residual: true } : {}), tensors };
  }

  /** Fold every adapter into its base weights: inference then runs the plain UNet and VAE (not reversible for training). */
  async mergeAdapters(): Promise<void> {
    await this.unetLora.merge();
    await this.vaeLora.merge();
  }

  /**
   * What CODiff trains, under the official names (`unet.<peft name>`, `unet.conv_in.base_layer.*`, `proj.*`,
   * `vae.<peft name>`): the LoRA A/B tensors, the UNet's conv_in and the projection. Each tensor once. A `full`
   * generator trains every UNet parameter (`unet.<diffusers name>`) and the projection.
   */
  trainableParameters(): [string, Parameter][] {
    if (this.training === 'full') {
      return [
        ...[...this.unet.namedTrainableParameters()].map(([k, p]): [string, Parameter] => [`unet.${k}`, p]),
        ...[...this.proj.namedParameters()].map(([k, p]): [string, Parameter] => [`proj.${k}`, p]),
      ];
    }
    return [
      ...[...this.unetLora.namedParameters()].map(([k, p]): [string, Parameter] => [`unet.${k}`, p]),
      ['unet.conv_in.base_layer.weight', this.unet.convIn.weight],
      ['unet.conv_in.base_layer.bias', this.unet.convIn.bias!],
      ...[...this.proj.namedParameters()].map(([k, p]): [string, Parameter] => [`proj.${k}`, p]),
      ...[...this.vaeLora.namedParameters()].map(([k, p]): [string, Parameter] => [`vae.${k}`, p]),
    ];
  }

  dispose(): void {
    this.unetLora.dispose();
    this.vaeLora.dispose();
    this.proj.dispose();
    this.unet.dispose();
    this.vae.dispose();
    this.cave.dispose();
  }
}
