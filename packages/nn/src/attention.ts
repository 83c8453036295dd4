import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './ops.js';

/**
 * Per head, attention scores of at least this many entries (Tq·Tk) are computed with 2-D matMuls per batch element
 * and head; smaller ones with one batched matMul over all of them. On wasm, 1 thread: a 1536×1536 head is ~10×
 * faster as 2-D matMuls, while codiff-lite's training attention (batch 16, 6 heads, 16×16 and 16×4 scores) is 6–10×
 * faster batched, where ~200 tiny kernel calls per matMul cost more than their arithmetic.
 */
export const PER_HEAD_MIN_SCORES = 4096;

/** softmax(q·kᵀ·scale)·v for q [B, Tq, H·D], k and v [B, Tk, H·D], heads split along the last axis. */
export function scaledDotProductAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  return q.shape[1] * k.shape[1] >= PER_HEAD_MIN_SCORES ? perHeadAttention(q, k, v, heads) : batchedAttention(q, k, v, heads);
}

/**
 * Each batch element and head with 2-D matMuls. The pieces come from unstack and split, whose gradients are one
 * stack and one concat (a slice's is a pad to the whole input, one per piece).
 */
function perHeadAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const scale = 1 / Math.sqrt(q.shape[2] / heads);
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

/** All batch elements and heads in one batched matMul per product: [B·H, T, D] operands. */
function batchedAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, queries, channels] = q.shape;
    const dim = channels / heads;
    // [B, T, H·D] → [B·H, T, D], or [B·H, D, T] for kᵀ (transposed here rather than by matMul's slower flag).
    const split = (t: tf.Tensor3D, order: number[]) => {
      const parts = tf.transpose(tf.reshape(t, [batch, t.shape[1], heads, dim]), order);
      return tf.reshape(parts, [batch * heads, parts.shape[2]!, parts.shape[3]!]) as tf.Tensor3D;
    };
    const scores = tf.softmax(tf.mul(tf.matMul(split(q, [0, 2, 1, 3]), split(k, [0, 2, 3, 1])), 1 / Math.sqrt(dim)));
    const out = tf.matMul(scores, split(v, [0, 2, 1, 3]));
    return tf.reshape(tf.transpose(tf.reshape(out, [batch, heads, queries, dim]), [0, 2, 1, 3]), [batch, queries, channels]) as tf.Tensor3D;
  });
}
