import * as tf from '@tensorflow/tfjs-core';
import { Module } from '@codiff/nn';
import { PipelineError } from './errors.js';

export interface PixelUnshuffleConfig {
  /** Side of the pixel block that becomes one latent position (codiff-lite: 4). */
  readonly factor: number;
  readonly imageChannels: number;
  readonly latentChannels: number;
  readonly scalingFactor: number;
}

/** The `_class_name` of a stand-in's `vae/config.json`. */
export const PIXEL_UNSHUFFLE_CLASS = 'PixelUnshuffle';

export function pixelUnshuffleConfig(factor: number, imageChannels = 3): PixelUnshuffleConfig {
  if (!Number.isInteger(factor) || factor < 1) throw new PipelineError(`the pixel-unshuffle factor must be a positive integer (got ${factor})`);
  return { factor, imageChannels, latentChannels: factor * factor * imageChannels, scalingFactor: 1 };
}

/**
 * An exactly invertible stand-in for SD's VAE when no pretrained one is at hand (codiff-lite): the "latent" is the
 * image in [−1, 1] with each f×f pixel block stacked into channels (space-to-depth, TF's DCR order: channel
 * (i·f + j)·C + c holds pixel (i, j), colour c of the block), and decoding is the inverse. Deterministic (std 0),
 * scaling factor 1, no parameters: the one-step formula and everything after it stay as they are.
 */
export class PixelUnshuffleAutoencoder extends Module {
  constructor(readonly config: PixelUnshuffleConfig) {
    super();
  }

  static fromConfigJson(json: Record<string, unknown>): PixelUnshuffleAutoencoder {
    if (json._class_name !== PIXEL_UNSHUFFLE_CLASS) throw new PipelineError(`not a ${PIXEL_UNSHUFFLE_CLASS} configuration (_class_name ${JSON.stringify(json._class_name)})`);
    return new PixelUnshuffleAutoencoder(pixelUnshuffleConfig(json.factor as number, (json.image_channels as number | undefined) ?? 3));
  }

  /** The `vae/config.json` of a model folder that uses this stand-in. */
  toConfigJson(): Record<string, unknown> {
    return { _class_name: PIXEL_UNSHUFFLE_CLASS, factor: this.config.factor, image_channels: this.config.imageChannels };
  }

  encode(x: tf.Tensor4D): { mean: tf.Tensor4D; std: tf.Scalar } {
    const [b, h, w, c] = x.shape;
    const f = this.config.factor;
    if (h % f !== 0 || w % f !== 0 || c !== this.config.imageChannels) {
      throw new PipelineError(`pixel-unshuffle ×${f} takes ${this.config.imageChannels}-channel images whose sides are multiples of ${f} (got ${h}×${w}×${c})`);
    }
    // Rank-4 reshapes and transposes only: every backend (wasm included) has them, with gradients.
    const mean = tf.tidy(() => {
      const rows = tf.reshape(x, [b * (h / f), f, w / f, f * c]);
      return tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [b, h / f, w / f, f * f * c]) as tf.Tensor4D;
    });
    return { mean, std: tf.scalar(0) };
  }

  decode(z: tf.Tensor4D): tf.Tensor4D {
    const [b, h, w, d] = z.shape;
    const f = this.config.factor;
    if (d !== this.config.latentChannels) throw new PipelineError(`pixel-shuffle ×${f} takes ${this.config.latentChannels}-channel latents (got ${d})`);
    return tf.tidy(() => {
      const blocks = tf.reshape(z, [b * h, w, f, f * this.config.imageChannels]);
      return tf.reshape(tf.transpose(blocks, [0, 2, 1, 3]), [b, h * f, w * f, this.config.imageChannels]) as tf.Tensor4D;
    });
  }
}
