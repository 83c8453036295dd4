import * as tf from '@tensorflow/tfjs-core';
import { checkPair } from './dists.js';

/** The JPEG block side. */
const BLOCK = 8;

/**
 * Where an image's JPEG grid sits: [top, left], the image's offset from the 8×8 grid, so block edges lie before
 * rows y with (y + top) % 8 = 0 and before columns x with (x + left) % 8 = 0 ([0, 0]: aligned).
 */
export type GridShift = readonly [top: number, left: number];

/**
 * The mean squared error of the difference across JPEG block edges: for each pair of neighbours on either side
 * of an edge, ((d[i] − d[i−1]) − (r[i] − r[i−1]))². It is zero when the error is smooth across the grid and large
 * when blocks keep their steps: the blocking that PSNR-B's blocking effect factor measures and plain MSE does not
 * single out. NHWC batches; `gridShifts` one per image. Differentiable; a scalar.
 */
export function blockEdgeMse(reference: tf.Tensor4D, distorted: tf.Tensor4D, gridShifts: readonly GridShift[]): tf.Scalar {
  checkPair(reference, distorted);
  const [b, h, w, c] = reference.shape;
  if (gridShifts.length !== b) throw new RangeError(`blockEdgeMse: ${gridShifts.length} grid shifts for a batch of ${b}`);
  if (h < 2 || w < 2) throw new RangeError(`blockEdgeMse needs images of at least 2×2 (got ${h}×${w})`);
  // Masks of the neighbour pairs (i − 1, i) that straddle a block edge, per image: rows [b, h − 1, 1, 1], columns [b, 1, w − 1, 1].
  const edges = (n: number, shift: number) => Array.from({ length: n - 1 }, (_, i): number => ((i + 1 + shift) % BLOCK === 0 ? 1 : 0));
  const rowMask = gridShifts.flatMap(([top]) => edges(h, top));
  const colMask = gridShifts.flatMap(([, left]) => edges(w, left));
  const pairs = rowMask.reduce((a, m) => a + m, 0) * w * c + colMask.reduce((a, m) => a + m, 0) * h * c;
  return tf.tidy(() => {
    if (pairs === 0) return tf.scalar(0);
    const error = tf.sub(distorted, reference);
    const down = tf.sub(tf.slice(error, [0, 1, 0, 0], [b, h - 1, w, c]), tf.slice(error, [0, 0, 0, 0], [b, h - 1, w, c]));
    const across = tf.sub(tf.slice(error, [0, 0, 1, 0], [b, h, w - 1, c]), tf.slice(error, [0, 0, 0, 0], [b, h, w - 1, c]));
    const rows = tf.sum(tf.mul(tf.square(down), tf.tensor4d(rowMask, [b, h - 1, 1, 1])));
    const cols = tf.sum(tf.mul(tf.square(across), tf.tensor4d(colMask, [b, 1, w - 1, 1])));
    return tf.div(tf.add(rows, cols), pairs) as tf.Scalar;
  });
}
