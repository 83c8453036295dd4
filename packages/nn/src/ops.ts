import * as tf from '@tensorflow/tfjs-core';

/**
 * tf.matMul for 2-D operands, with transposes materialised on wasm: its matMul runs about 7× slower with the
 * transpose flags set (3 vs 24 GFLOP/s measured) than on an explicitly transposed copy.
 */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm' || (!transposeA && !transposeB)) return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b));
}

const detached = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({ value: tf.clone(args[0] as tf.Tensor), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) }));

/** The value of `x` with no gradient through it (torch's `detach`; TF.js has no stop-gradient op). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return detached(x) as T;
}
