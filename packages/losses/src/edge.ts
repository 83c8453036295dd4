import * as tf from '@tensorflow/tfjs-core';
import { checkPair, type Dists } from './dists.js';

/** Sobel kernels as cross-correlation (torch/TF conv) weights: x responds to left→right increase, y to top→bottom. */
const SOBEL_X = [-1, 0, 1, -2, 0, 2, -1, 0, 1];
const SOBEL_Y = [-1, -2, -1, 0, 0, 0, 1, 2, 1];
const MAGNITUDE_EPS = 1e-6;

/**
 * Sobel edge magnitude of an NHWC RGB batch, as used by edge-aware DISTS: grey = mean of R, G, B; gx, gy = 3×3
 * Sobel responses with zero padding 1 (same size); edges = √(gx² + gy² + 1e-6) (the ε keeps the gradient finite in
 * flat regions). Returns [B, H, W, 1].
 */
export function sobelMagnitude(images: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const grey = tf.mean(images, 3, true) as tf.Tensor4D;
    const kernel = tf.tensor4d(SOBEL_X.flatMap((x, i) => [x, SOBEL_Y[i]]), [3, 3, 1, 2]);
    const g = tf.conv2d(grey, kernel, 1, 'same');
    return tf.sqrt(tf.add(tf.sum(tf.square(g), 3, true), MAGNITUDE_EPS)) as tf.Tensor4D;
  });
}

/**
 * Edge-aware DISTS (SODiff): DISTS(Sobel(x), Sobel(y)) + DISTS(x, y), the edge maps repeated to three channels for
 * the VGG. Scores [B], differentiable.
 */
export function edgeAwareDists(dists: Dists, reference: tf.Tensor4D, distorted: tf.Tensor4D): tf.Tensor1D {
  checkPair(reference, distorted);
  return tf.tidy(() => {
    const edges = (x: tf.Tensor4D) => tf.tile(sobelMagnitude(x), [1, 1, 1, 3]) as tf.Tensor4D;
    return tf.add(dists.score(edges(reference), edges(distorted)), dists.score(reference, distorted)) as tf.Tensor1D;
  });
}
