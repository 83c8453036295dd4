import * as tf from '@tensorflow/tfjs-core';

/**
 * tf.matMul for 2-D operands, with transposes materialised on wasm: its matMul runs about 7× slower with the
 * transpose flags set (3 vs 24 GFLOP/s measured) than on an explicitly transposed copy.
 */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm' || (!transposeA && !transposeB)) return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b));
}
