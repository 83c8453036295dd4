import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './ops.js';

/**
 * softmax(q·kᵀ·scale)·v for q [B, Tq, H·D], k and v [B, Tk, H·D], heads split along the last axis. Computed
 * per batch element and head with 2-D matMuls, which TF.js's wasm backend runs far faster than batched ones. The
 * pieces come from unstack and split, whose gradients are one stack and one concat (a slice's is a pad to the
 * whole input, one per piece).
 */
export function scaledDotProductAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const dim = q.shape[2] / heads;
    const scale = 1 / Math.sqrt(dim);
    // (TF.js's unstack gradient fails for a single piece: a batch of one is reshaped instead.)
    const batchOf = (t: tf.Tensor3D) => (t.shape[0] === 1 ? [tf.reshape(t, [t.shape[1], t.shape[2]]) as tf.Tensor2D] : (tf.unstack(t) as tf.Tensor2D[]));
    const [qs, ks, vs] = [q, k, v].map(batchOf);
    const headsOf = (t: tf.Tensor2D) => (heads === 1 ? [t] : (tf.split(t, heads, 1) as tf.Tensor2D[]));
    const outputs = qs.map((qb, b) => {
      const [qh, kh, vh] = [qb, ks[b], vs[b]].map(headsOf);
      // Each head's [N, N] scores are freed before the next head's (9216 tokens: 340 MB a head).
      const perHead = qh.map((_, h) => tf.tidy(() => tf.matMul(tf.softmax(tf.mul(matMul(qh[h], kh[h], false, true), scale)), vh[h])));
      return heads === 1 ? perHead[0] : (tf.concat(perHead, 1) as tf.Tensor2D);
    });
    return tf.stack(outputs) as tf.Tensor3D;
  });
}
