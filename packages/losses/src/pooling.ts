import * as tf from '@tensorflow/tfjs-core';

/**
 * Max-pool over one spatial axis (1 = H, 2 = W) with torch's output size and gradient routing: each window's
 * gradient goes to its first maximum. Windows start at stride·i; with `ceilMode` a last window that overhangs the
 * edge is kept and covers only real pixels.
 */
function maxPoolAxis(x: tf.Tensor4D, axis: 1 | 2, kernel: number, stride: number, ceilMode: boolean): tf.Tensor4D {
  const n = x.shape[axis];
  const out = pooledLength(n, kernel, stride, ceilMode);
  // Every tap t reads stride·i + t for i < out: pad (with −∞) or cut the axis to (kernel − 1) + stride·out.
  const needed = kernel - 1 + stride * out;
  const padding: [number, number][] = [[0, 0], [0, 0], [0, 0], [0, 0]];
  padding[axis] = [0, Math.max(0, needed - n)];
  const padded = needed > n ? tf.pad(x, padding, -Infinity) : x;
  const tap = (t: number) => {
    const begin = [0, 0, 0, 0];
    const size = [...x.shape] as number[];
    begin[axis] = t;
    size[axis] = stride * out;
    const strip = tf.slice(padded, begin, size);
    // [.., out, stride, ..] and keep the first of each group of `stride`: positions stride·i + t.
    const grouped = axis === 1 ? tf.reshape(strip, [size[0], out, stride, size[2] * size[3]]) : tf.reshape(strip, [size[0] * size[1], out, stride, size[3]]);
    const first = tf.slice(grouped, [0, 0, 0, 0], [-1, -1, 1, -1]);
    const shape = [...x.shape] as [number, number, number, number];
    shape[axis] = out;
    return tf.reshape(first, shape) as tf.Tensor4D;
  };
  let result = tap(0);
  // tf.maximum passes a tie's gradient to its first argument: folding left keeps the earliest tap.
  for (let t = 1; t < kernel; t++) result = tf.maximum(result, tap(t));
  return result;
}

/** torch's output length of a pool along an axis of length n. */
const pooledLength = (n: number, kernel: number, stride: number, ceilMode: boolean) =>
  (ceilMode ? Math.ceil((n - kernel) / stride) : Math.floor((n - kernel) / stride)) + 1;

/** Whether TF.js is recording a gradient tape (inside tf.grad, valueAndGrad, variableGrads). Engine state, read-only. */
const recordingGradients = () => (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth > 0;

/**
 * `torch.nn.MaxPool2d(kernel, stride, ceil_mode)` on NHWC, including its gradient: each window's gradient goes to
 * its first maximum in row-major order. TF.js's MaxPoolGrad routes ties elsewhere, and ties are common where JPEG
 * left flat blocks; there a perceptual loss's input gradient would differ from the reference by several percent.
 * Under a gradient tape it runs a separable formulation whose tie order is torch's (the first maximum of each row,
 * then the first of those rows, is the row-major first maximum); otherwise TF.js's own max-pool, ~50× faster, gives
 * the same values.
 */
export function torchMaxPool(x: tf.Tensor4D, kernel: number, stride: number, ceilMode = false): tf.Tensor4D {
  return tf.tidy(() => {
    if (recordingGradients()) return maxPoolAxis(maxPoolAxis(x, 2, kernel, stride, ceilMode), 1, kernel, stride, ceilMode);
    const [, h, w] = x.shape;
    // Ceil mode: an overhanging last window sees −∞ beyond the edge, i.e. only real pixels.
    const padH = Math.max(0, stride * (pooledLength(h, kernel, stride, ceilMode) - 1) + kernel - h);
    const padW = Math.max(0, stride * (pooledLength(w, kernel, stride, ceilMode) - 1) + kernel - w);
    const padded = padH || padW ? tf.pad(x, [[0, 0], [0, padH], [0, padW], [0, 0]], -Infinity) : x;
    return tf.maxPool(padded, kernel, stride, 'valid');
  });
}
