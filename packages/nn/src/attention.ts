import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './ops.js';

/**
 * softmax(q·kᵀ·scale)·v for q [B, Tq, H·D], k and v [B, Tk, H·D], heads split along the last axis. Computed
 * per batch element and head with 2-D matMuls, which TF.js's wasm backend runs far faster than batched ones.
 */
export function scaledDotProductAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, , width] = q.shape;
    const dim = width / heads;
    const scale = 1 / Math.sqrt(dim);
    const outputs: tf.Tensor2D[] = [];
    for (let b = 0; b < batch; b++) {
      const qb = tf.squeeze(tf.slice(q, [b, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
      const kb = tf.squeeze(tf.slice(k, [b, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
      const vb = tf.squeeze(tf.slice(v, [b, 0, 0], [1, -1, -1]), [0]) as tf.Tensor2D;
      const perHead: tf.Tensor2D[] = [];
      for (let h = 0; h < heads; h++) {
        const qh = heads === 1 ? qb : tf.slice(qb, [0, h * dim], [-1, dim]);
        const kh = heads === 1 ? kb : tf.slice(kb, [0, h * dim], [-1, dim]);
        const vh = heads === 1 ? vb : tf.slice(vb, [0, h * dim], [-1, dim]);
        // Each head's [N, N] scores are freed before the next head's (9216 tokens: 340 MB a head).
        perHead.push(tf.tidy(() => tf.matMul(tf.softmax(tf.mul(matMul(qh as tf.Tensor2D, kh as tf.Tensor2D, false, true), scale)), vh)));
      }
      outputs.push(heads === 1 ? perHead[0] : (tf.concat(perHead, 1) as tf.Tensor2D));
    }
    return tf.stack(outputs) as tf.Tensor3D;
  });
}
