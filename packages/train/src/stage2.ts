import * as tf from '@tensorflow/tfjs-core';
import { stopGradient } from '@codiff/nn';
import { blockEdgeMse, discriminatorLoss, generatorLoss, type GridShift } from '@codiff/losses';
import { VAE_ADAPTER, type CodiffGenerator, type Discriminator } from '@codiff/pipeline';

/** A stage-2 batch: JPEG input and original, NHWC in [0, 1] (sides multiples of 8), and optional latent noises. */
export interface Stage2Batch {
  readonly lq: tf.Tensor4D;
  readonly hq: tf.Tensor4D;
  /** N(0, 1) for the generator's `latent_dist.sample()` (the official training path); the mean without it. */
  readonly noise?: tf.Tensor4D;
  /** N(0, 1) for the HQ latents the discriminator sees as real. */
  readonly realNoise?: tf.Tensor4D;
  /** Each image's offset from its JPEG grid; needed by the block-edge term. */
  readonly gridShifts?: readonly GridShift[];
}

/** A perceptual distance on [0, 1] NHWC images, per pair: DISTS officially, LPIPS for the lite model. */
export interface PerceptualDistance {
  score(reference: tf.Tensor4D, distorted: tf.Tensor4D): tf.Tensor1D;
}

export interface Stage2Weights {
  /** λ of the perceptual term beside MSE (official 1). */
  readonly perceptual: number;
  /** Weight of softplus(−D(x̂0)) in the generator loss (official 5e-3). */
  readonly ganGenerator: number;
  /** Weight of the discriminator's BCE (official 1e-2). */
  readonly ganDiscriminator: number;
  /**
   * Weight of the block-edge MSE (`blockEdgeMse`: the error's steps across the JPEG grid), not in the official
   * loss; absent or 0 leaves the official one.
   */
  readonly blockEdges?: number;
}

export const OFFICIAL_STAGE2_WEIGHTS: Stage2Weights = { perceptual: 1, ganGenerator: 5e-3, ganDiscriminator: 1e-2 };

export interface GeneratorLosses {
  readonly total: tf.Scalar;
  readonly mse: tf.Scalar;
  readonly perceptual: tf.Scalar;
  /** Unweighted softplus(−D(x̂0)); zero when there is no discriminator. */
  readonly gan: tf.Scalar;
  /** Unweighted block-edge MSE, when weighted. */
  readonly blockEdges?: tf.Scalar;
  /** The generator's clean latents x̂0, which the discriminator step reads as fake. */
  readonly latents: tf.Tensor4D;
}

/**
 * The generator's loss of `main_train_codiff.py`: MSE(x̂, x) + λ·perceptual(x̂, x) + w·softplus(−D(x̂0)) on [0, 1]
 * images. As in the official code the adversarial term reaches the loss value but not the gradient (its
 * discriminator runs under no_grad); `ganGradient` lets it through the frozen discriminator, as the paper describes.
 */
export function generatorLosses(
  g: CodiffGenerator,
  perceptual: PerceptualDistance,
  discriminator: Discriminator | undefined,
  batch: Stage2Batch,
  options: { weights?: Stage2Weights; ganGradient?: boolean } = {},
): GeneratorLosses {
  const w = options.weights ?? OFFICIAL_STAGE2_WEIGHTS;
  return tf.tidy(() => {
    const out = g.forward(batch.lq, { noise: batch.noise });
    const restored = tf.add(tf.mul(out.image, 0.5), 0.5) as tf.Tensor4D;
    const mse = tf.mean(tf.squaredDifference(restored, batch.hq)) as tf.Scalar;
    // At weight 0 the distance is only logged: detached, so no backward pass runs through the perceptual network.
    const distance = tf.mean(perceptual.score(w.perceptual === 0 ? stopGradient(restored) : restored, batch.hq)) as tf.Scalar;
    const gan = discriminator
      ? generatorLoss(discriminator.logits(options.ganGradient ? out.x0 : stopGradient(out.x0)))
      : tf.scalar(0);
    const terms = [mse, tf.mul(distance, w.perceptual), tf.mul(gan, w.ganGenerator)];
    let blockEdges: tf.Scalar | undefined;
    if (w.blockEdges) {
      if (!batch.gridShifts) throw new RangeError('the block-edge term needs the batch’s grid shifts');
      blockEdges = blockEdgeMse(batch.hq, restored, batch.gridShifts);
      terms.push(tf.mul(blockEdges, w.blockEdges));
    }
    return { total: tf.addN(terms) as tf.Scalar, mse, perceptual: distance, gan, ...(blockEdges && { blockEdges }), latents: out.x0 };
  });
}

/**
 * The scaled latents of the originals, as the official `compute_gt_latents`: the discriminator's own VAE is the
 * pretrained one, so CODiff's VAE-encoder adapter is switched off for this encode.
 */
export function realLatents(g: CodiffGenerator, hq: tf.Tensor4D, noise?: tf.Tensor4D): tf.Tensor4D {
  g.vaeLora.setActive([]);
  try {
    return g.encode(hq, noise);
  } finally {
    g.vaeLora.setActive([VAE_ADAPTER]);
  }
}

/** The discriminator's loss: w·(BCE(D(real), 1) + BCE(D(fake), 0)), fakes detached; also the unweighted value. */
export function discriminatorLosses(discriminator: Discriminator, real: tf.Tensor4D, fake: tf.Tensor4D, weights: Stage2Weights = OFFICIAL_STAGE2_WEIGHTS): { total: tf.Scalar; unweighted: tf.Scalar } {
  return tf.tidy(() => {
    const unweighted = discriminatorLoss(discriminator.logits(stopGradient(real)), discriminator.logits(stopGradient(fake)));
    return { total: tf.mul(unweighted, weights.ganDiscriminator) as tf.Scalar, unweighted };
  });
}
