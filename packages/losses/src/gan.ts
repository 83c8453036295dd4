import * as tf from '@tensorflow/tfjs-core';

/** softplus(x) = log(1 + eˣ), computed without overflow: max(x, 0) + log(1 + e^−|x|). */
function softplus(x: tf.Tensor): tf.Tensor {
  return tf.add(tf.relu(x), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
}

/**
 * The discriminator's loss as CODiff computes it: binary cross-entropy on logits with real → 1 and fake → 0,
 * averaged over all real and fake logits together (one BCE over their concatenation; with as many of each, half
 * of softplus(−real)‾ + softplus(fake)‾ — golden/codiff-train records 0.7155, not 1.431). Pass the fake logits
 * computed from a detached generator output.
 */
export function discriminatorLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const total = tf.add(tf.sum(softplus(tf.neg(realLogits))), tf.sum(softplus(fakeLogits)));
    return tf.div(total, realLogits.size + fakeLogits.size) as tf.Scalar;
  });
}

/** The generator's non-saturating adversarial loss: mean softplus(−D(fake)). */
export function generatorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(softplus(tf.neg(fakeLogits))) as tf.Scalar);
}
