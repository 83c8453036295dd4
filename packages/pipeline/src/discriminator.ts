import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, GroupNorm, Module, silu, type Parameter } from '@codiff/nn';
import type { UNet2DConditionModel } from '@codiff/sd-unet';
import { PipelineError } from './errors.js';

/** The timestep the official discriminator runs its UNet at. */
export const DISCRIMINATOR_TIMESTEP = 199;

/** Conv4 → GroupNorm(32) → SiLU → Conv4 at indices 0, 1, 3 (2 is the parameter-free SiLU), as the official Sequential. */
class ClassifierHead extends Module {
  readonly conv1: Conv2d;
  readonly norm: GroupNorm;
  readonly conv2: Conv2d;
  constructor(channels: number) {
    super();
    this.conv1 = this.child('0', new Conv2d(channels, 2 * channels, 4, { padding: 1 }));
    this.norm = this.child('1', new GroupNorm(32, 2 * channels));
    this.conv2 = this.child('3', new Conv2d(2 * channels, 1, 4, { padding: 1 }));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.conv2.forward(silu(this.norm.forward(this.conv1.forward(x))) as tf.Tensor4D));
  }
}

/**
 * CODiff's latent discriminator, as the official `Discriminator`: an SD UNet's down and mid blocks (pretrained,
 * frozen) run on a latent at t = 199 with a learnable 77-token context, then a conv head to patch logits. Only the
 * head trains: the official code runs the UNet under no_grad, so its LoRA (B = 0, never updated) changes nothing
 * and is left out here, and the token embedding keeps its initial values.
 */
export class Discriminator extends Module {
  readonly unet: UNet2DConditionModel;
  /** [77, cross_attention_dim]; official name `embeddings`. */
  readonly embeddings: Parameter;
  readonly cls_pred_branch: ClassifierHead;

  /** `unet`: the pretrained SD UNet (encoder-only is enough: see sd-unet's `loadUNet(dir, { encoderOnly })`); owned from then on. */
  constructor(unet: UNet2DConditionModel) {
    super();
    this.unet = unet;
    const config = unet.config;
    this.embeddings = this.param('embeddings', [77, config.crossAttentionDim], 'same', 'zeros');
    const channels = config.blockOutChannels[config.blockOutChannels.length - 1];
    if ((2 * channels) % 32 !== 0) throw new PipelineError(`the discriminator head's GroupNorm(32) needs 2·${channels} channels divisible by 32`);
    this.cls_pred_branch = this.child('cls_pred_branch', new ClassifierHead(channels));
  }

  /** Patch logits [B, h', w', 1] of scaled latents [B, h, w, C] (mid-block map shrunk by 1 per head conv). */
  logits(latents: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const batch = latents.shape[0];
      const context = tf.tile(tf.expandDims(this.embeddings.value, 0), [batch, 1, 1]) as tf.Tensor3D;
      const mid = this.unet.encode(latents, DISCRIMINATOR_TIMESTEP, context);
      if (mid.shape[1] < 3 || mid.shape[2] < 3) {
        throw new PipelineError(`the discriminator needs a mid-block map of at least 3×3 (got ${mid.shape[1]}×${mid.shape[2]}); train on larger patches`);
      }
      return this.cls_pred_branch.forward(mid);
    });
  }

  /** What trains: the head (the UNet and the embedding get no gradient in the official code). */
  trainableParameters(): [string, Parameter][] {
    return [...this.cls_pred_branch.namedParameters('cls_pred_branch.')];
  }

  override dispose(): void {
    super.dispose();
    this.unet.dispose();
  }
}
