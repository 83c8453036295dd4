import * as tf from '@tensorflow/tfjs-core';

/**
 * tf.matMul for 2-D operands, with transposes materialised on wasm: its matMul runs about 7× slower with the
 * transpose flags set (3 vs 24 GFLOP/s measured) than on an explicitly transposed copy.
 */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm' || (!transposeA && !transposeB)) return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => tf.matMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b));
}

/**
 * Σ over axis 1 of [b, n, c] → [b, c]. wasm's Sum kernel first transposes the reduced axis behind the channels, which
 * is slow on activations; summing runs of 32 rows first and then those partial sums costs about one elementwise pass
 * (2–4× faster: 3.8 ms against 8.9 ms for 64 × 64² × 16, 2.1 against 8.1 ms for 128 × 192 × 64). A matMul with a
 * row of ones is slower still on fresh activations: XNNPACK repacks its second operand on every call.
 */
function sumRows(x: tf.Tensor3D): tf.Tensor2D {
  const [b, n, c] = x.shape;
  if (tf.getBackend() !== 'wasm' || n % 32 !== 0) return tf.sum(x, 1);
  return tf.tidy(() => tf.sum(tf.sum(tf.reshape(x, [b, n / 32, 32, c]), 2), 1));
}

/** Σ over every axis but the last: the per-channel sum of a bias's or a BatchNorm's gradient. */
export function channelSum(x: tf.Tensor): tf.Tensor1D {
  const channels = x.shape[x.rank - 1];
  return tf.tidy(() => tf.reshape(sumRows(tf.reshape(x, [1, x.size / channels, channels])), [channels]));
}

/** Per-image channel means of NHWC activations, [b, h, w, c] → [b, c] (see `sumRows` for why not tf.mean). */
export function spatialMean(x: tf.Tensor4D): tf.Tensor2D {
  const [b, h, w, c] = x.shape;
  return tf.tidy(() => tf.div(sumRows(tf.reshape(x, [b, h * w, c])), h * w));
}

/**
 * Four [b, h, w, c] images as the phases of one [b, 2h, 2w, c]: out[2i + r, 2j + s] = phases[2r + s][i, j]. Two
 * concatenations and reshapes, whose gradients every backend has.
 */
export function interleave2x2(phases: readonly [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D]): tf.Tensor4D {
  const [b, h, w, c] = phases[0].shape;
  return tf.tidy(() => {
    // Row r of the output, columns interleaved: [b, h, w, (s, c)] read as [b, h, 1, 2w·c]; then rows: [b, h, (r, 2w·c)].
    const rows = [0, 1].map((r) => tf.reshape(tf.concat([phases[2 * r], phases[2 * r + 1]], 3), [b, h, 1, 2 * w * c]));
    return tf.reshape(tf.concat(rows, 2), [b, 2 * h, 2 * w, c]) as tf.Tensor4D;
  });
}

/**
 * Nearest-neighbour ×2 upsampling of NHWC images. Not tf.image.resizeNearestNeighbor: TF.js 4.22's cpu gradient of
 * that op reads dy at the first image's offset for every image of a batch.
 */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  return interleave2x2([x, x, x, x]);
}

/**
 * The value of `x` with no gradient through it (torch's `detach`; TF.js has no stop-gradient op): a second handle on
 * `x`'s data, made without a kernel, so the tape has no path from `x` to it. What is computed from it is left out of
 * the backward pass altogether; a custom gradient returning zeros would still backpropagate through all of it.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const engine = tf.engine();
  engine.backend.incRef(x.dataId);
  return engine.makeTensorFromDataId(x.dataId, x.shape, x.dtype) as T;
}

/** Edge padding of NHWC images (torch's ReplicationPad2d): the border rows and columns repeated. No padding: `x` itself. */
export function replicatePad(x: tf.Tensor4D, pad: { top?: number; bottom?: number; left?: number; right?: number }): tf.Tensor4D {
  const { top = 0, bottom = 0, left = 0, right = 0 } = pad;
  if (top + bottom + left + right === 0) return x;
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const edge = (t: tf.Tensor4D, axis: 1 | 2, at: number, times: number) => {
      const begin = [0, 0, 0, 0], size = [-1, -1, -1, -1], reps = [1, 1, 1, 1];
      begin[axis] = at;
      size[axis] = 1;
      reps[axis] = times;
      return tf.tile(tf.slice(t, begin, size), reps);
    };
    const rows = tf.concat([...(top ? [edge(x, 1, 0, top)] : []), x, ...(bottom ? [edge(x, 1, h - 1, bottom)] : [])], 1) as tf.Tensor4D;
    return tf.concat([...(left ? [edge(rows, 2, 0, left)] : []), rows, ...(right ? [edge(rows, 2, w - 1, right)] : [])], 2) as tf.Tensor4D;
  });
}
