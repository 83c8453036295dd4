import * as tf from '@tensorflow/tfjs-core';
import type { CaVE } from '@codiff/cave';

/** A stage-1 batch: JPEG input and original, NHWC in [0, 1], and the target (100 − QF)/100 per sample. */
export interface Stage1Batch {
  readonly lq: tf.Tensor4D;
  readonly hq: tf.Tensor4D;
  readonly target: tf.Tensor1D;
}

export interface Stage1Losses {
  readonly total: tf.Scalar;
  readonly reconstruction: tf.Scalar;
  /** Weighted, as the official trainer's QF_loss. */
  readonly quality: tf.Scalar;
}

/** The official weight of the QF loss beside the reconstruction L1. */
export const QF_LOSS_WEIGHT = 1e-3;

/**
 * L1(reconstruction, HQ) + w·L1(qf, (100 − QF)/100), mean reductions, as `CaVETrainer.optimize_parameters`
 * (w = 1e-3 there).
 */
export function stage1Losses(cave: CaVE, batch: Stage1Batch, qfWeight = QF_LOSS_WEIGHT): Stage1Losses {
  return tf.tidy(() => {
    const out = cave.forward(batch.lq);
    const reconstruction = tf.mean(tf.abs(tf.sub(out.reconstruction, batch.hq))) as tf.Scalar;
    const quality = tf.mul(tf.mean(tf.abs(tf.sub(tf.reshape(out.qf, [-1]), batch.target))), qfWeight) as tf.Scalar;
    return { total: tf.add(reconstruction, quality) as tf.Scalar, reconstruction, quality };
  });
}
