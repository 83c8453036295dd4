// Gradients for training. TF.js core registers none by itself; this module registers them all, and on the wasm
// backend replaces Conv2D's (wasm lacks the Conv2DBackpropFilter kernel the stock gradient needs), MatMul's (the
// stock one uses transposed matMuls, which wasm runs about 7× slower) and a bias Add's (wasm's Sum is slow over
// leading axes).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';
import { channelSum, interleave2x2, matMul } from './ops.js';

type Pad4 = { top: number; bottom: number; left: number; right: number };

/**
 * dL/dW of a Conv2D (NHWC, dilation 1): dW[i,j,c,o] = Σ_{b,y,x} x[b, y·s+i, x·s+j, c]·dy[b,y,x,o].
 * With a batch of 8 or more, one convolution with the batch as channels: x (as [c, H, W, b]) convolved with dy (as
 * a [Ho, Wo, b, o] filter, dilated by the stride), 2–4× faster than taps on XNNPACK. Smaller batches make that
 * filter too thin for XNNPACK (at batch 1 it is far slower): there, one matMul per kernel tap.
 */
export function conv2dFilterGradient(
  x: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  dy: tf.Tensor4D,
  stride: [number, number],
  pad: Pad4,
): tf.Tensor4D {
  return tf.tidy(() => {
    const padded = tf.pad(x, [[0, 0], [pad.top, pad.bottom], [pad.left, pad.right], [0, 0]]) as tf.Tensor4D;
    return x.shape[0] >= 8 ? filterGradientAsConv(padded, filterShape, dy, stride) : filterGradientByTaps(padded, filterShape, dy, stride);
  });
}

function filterGradientAsConv(padded: tf.Tensor4D, filterShape: readonly number[], dy: tf.Tensor4D, stride: [number, number]): tf.Tensor4D {
  const [kh, kw, cin, cout] = filterShape;
  // [b, H, W, c] → [c, H, W, b] as a 2-D then a 3-D transpose: wasm runs the two 2× faster than the one 4-D one.
  const [b, h, w] = padded.shape;
  const channelsFirst = tf.reshape(tf.transpose(tf.reshape(padded, [b * h * w, cin])), [cin, b, h * w]);
  const channelsAsBatch = tf.reshape(tf.transpose(channelsFirst, [0, 2, 1]), [cin, h, w, b]) as tf.Tensor4D;
  const dyAsFilter = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
  const dilated = stride[0] === 1 && stride[1] === 1 ? 1 : stride;
  let dw = tf.conv2d(channelsAsBatch, dyAsFilter, 1, 'valid', 'NHWC', dilated);
  // Rows/columns of x past the last window (floor in the forward's output size) give extra outputs: drop them.
  if (dw.shape[1] !== kh || dw.shape[2] !== kw) dw = tf.slice(dw, [0, 0, 0, 0], [cin, kh, kw, cout]);
  return tf.transpose(dw, [1, 2, 0, 3]) as tf.Tensor4D;
}

function filterGradientByTaps(padded: tf.Tensor4D, filterShape: readonly number[], dy: tf.Tensor4D, stride: [number, number]): tf.Tensor4D {
  const [kh, kw, cin, cout] = filterShape;
  const [b, oh, ow] = dy.shape;
  const [sh, sw] = stride;
  // dWᵀ per tap = dyᵀ·window: dy is transposed once, instead of every tap's window.
  const dyColumns = tf.transpose(tf.reshape(dy, [b * oh * ow, cout])) as tf.Tensor2D;
  const taps: tf.Tensor2D[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const window =
        sh === 1 && sw === 1
          ? tf.slice(padded, [0, i, j, 0], [b, oh, ow, cin])
          : tf.stridedSlice(padded, [0, i, j, 0], [b, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, cin], [1, sh, sw, 1]);
      taps.push(matMul(dyColumns, tf.reshape(window, [b * oh * ow, cin]) as tf.Tensor2D));
    }
  }
  return tf.transpose(tf.reshape(tf.stack(taps), [kh, kw, cout, cin]), [0, 1, 3, 2]) as tf.Tensor4D;
}

/**
 * dL/dx of a Conv2D (NHWC, dilation 1): for stride 1 a conv of dy with the filter rotated 180° and its in/out
 * channels swapped; with kernel = stride and no padding (a U-Net's downsampler: each output reads its own block)
 * one matMul and a rearrangement, ~10× faster on wasm than conv2dTranspose (its Conv2DBackpropInput); other stride-2
 * convs by output phases (strideTwoInputGradient); other strides conv2dTranspose.
 */
export function conv2dInputGradient(
  xShape: readonly [number, number, number, number],
  filter: tf.Tensor4D,
  dy: tf.Tensor4D,
  stride: [number, number],
  pad: Pad4,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filter.shape;
    const explicit = (a: number, b: number, c: number, d: number): [[number, number], [number, number], [number, number], [number, number]] => [[0, 0], [a, b], [c, d], [0, 0]];
    if (stride[0] === 1 && stride[1] === 1) {
      const rotated = rotated180(filter);
      return tf.conv2d(dy, rotated, 1, explicit(kh - 1 - pad.top, kh - 1 - pad.bottom, kw - 1 - pad.left, kw - 1 - pad.right));
    }
    if (kh === stride[0] && kw === stride[1] && pad.top + pad.bottom + pad.left + pad.right === 0) return blockConvInputGradient(xShape, filter, dy);
    if (stride[0] === 2 && stride[1] === 2) return strideTwoInputGradient(xShape, filter, dy, pad);
    return tf.conv2dTranspose(dy, filter, [...xShape], stride, explicit(pad.top, pad.bottom, pad.left, pad.right));
  });
}

/**
 * Taps of a filter ([kh, kw, cin, cout]) with its in/out channels swapped: pick(rows, cols)[i, j] =
 * filter[rows[i], cols[j]]ᵀ, as [rows, cols, cout, cin]. The channel swap is done once per filter; each pick is a
 * matMul with a 0/1 selection matrix: exact (one 1 per row), and much faster on wasm than its Reverse (4 ms for a
 * 3×3×192×192 filter), Gather and StridedSlice kernels.
 */
function swappedTaps(filter: tf.Tensor4D): (rows: readonly number[], cols: readonly number[]) => tf.Tensor4D {
  const [kh, kw, cin, cout] = filter.shape;
  const swapped = tf.reshape(tf.transpose(filter, [0, 1, 3, 2]), [kh * kw, cout * cin]) as tf.Tensor2D;
  return (rows, cols) => {
    const picks = new Float32Array(rows.length * cols.length * kh * kw);
    rows.forEach((r, i) => cols.forEach((c, j) => (picks[(i * cols.length + j) * kh * kw + r * kw + c] = 1)));
    return tf.reshape(tf.matMul(tf.tensor2d(picks, [rows.length * cols.length, kh * kw]), swapped), [rows.length, cols.length, cout, cin]) as tf.Tensor4D;
  };
}

/** The filter turned 180° with its in/out channels swapped ([kh, kw, cin, cout] → [kh, kw, cout, cin]). */
function rotated180(filter: tf.Tensor4D): tf.Tensor4D {
  const reversed = (k: number) => Array.from({ length: k }, (_, i) => k - 1 - i);
  return swappedTaps(filter)(reversed(filter.shape[0]), reversed(filter.shape[1]));
}

/**
 * dx of a stride-2 conv by the parity of its rows and columns. In padded coordinates row 2m + r receives
 * Σₜ dy[m − t]·W[r + 2t]ᵀ: for each of the four phases a stride-1 conv of dy with every other tap of the filter
 * (reversed, channels swapped), then the phases interleaved and the padding cropped. On wasm these are XNNPACK
 * convolutions; its Conv2DBackpropInput ran stride-2 3×3 gradients at under 1 GFLOP/s (about 90 ms for a 16×8×8×64
 * dy, the whole step's UNet downsampler share in codiff-lite's training).
 */
function strideTwoInputGradient(xShape: readonly [number, number, number, number], filter: tf.Tensor4D, dy: tf.Tensor4D, pad: Pad4): tf.Tensor4D {
  const [b, h, w, cin] = xShape;
  const [kh, kw] = filter.shape;
  const [, oh, ow] = dy.shape;
  // Phase rows and columns: half the padded input, rounded up (phases of odd sizes are cropped after interleaving).
  const mh = Math.ceil((h + pad.top + pad.bottom) / 2);
  const mw = Math.ceil((w + pad.left + pad.right) / 2);
  // Phase r's taps W[r + 2t], t = T − 1 … 0: a correlation reads dy[m − t].
  const taps = (k: number, r: number) => {
    const n = Math.ceil((k - r) / 2);
    return Array.from({ length: n }, (_, j) => r + 2 * (n - 1 - j));
  };
  const pick = swappedTaps(filter);
  const phase = (r: number, s: number): tf.Tensor4D => {
    const [rows, cols] = [taps(kh, r), taps(kw, s)];
    if (rows.length === 0 || cols.length === 0) return tf.zeros([b, mh, mw, cin]);
    return tf.conv2d(dy, pick(rows, cols), 1, [[0, 0], [rows.length - 1, mh - oh], [cols.length - 1, mw - ow], [0, 0]]);
  };
  const padded = interleave2x2([phase(0, 0), phase(0, 1), phase(1, 0), phase(1, 1)]);
  return tf.slice(padded, [0, pad.top, pad.left, 0], [b, h, w, cin]);
}

/** dx of a kernel = stride conv: dy·Wᵀ gives each output's k×k×cin block, which is then put in place. */
function blockConvInputGradient(xShape: readonly [number, number, number, number], filter: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  const [k, , cin, cout] = filter.shape;
  const [b, h, w] = dy.shape;
  // [k, k, cin, cout] flattened in the order depthToSpace reads a block: (row, column, channel).
  const blocks = matMul(tf.reshape(dy, [b * h * w, cout]) as tf.Tensor2D, tf.reshape(filter, [k * k * cin, cout]) as tf.Tensor2D, false, true);
  // (b·i, j, di, dj·c) → (b·i, di, j, dj·c): depthToSpace, as a rank-4 transpose (wasm's DepthToSpace is ~20× slower).
  const dx = tf.reshape(tf.transpose(tf.reshape(blocks, [b * h, w, k, k * cin]), [0, 2, 1, 3]), [b, h * k, w * k, cin]) as tf.Tensor4D;
  // Rows and columns past the last block (the forward's floor) get no gradient.
  return tf.pad(dx, [[0, 0], [0, xShape[1] - h * k], [0, xShape[2] - w * k], [0, 0]]);
}

type GradMap = { [input: string]: () => tf.Tensor };

/**
 * The input and filter gradients of a Conv2D (NHWC, dilation 1) with the helpers above, each a closure: TF.js calls
 * only those an input needs (a frozen layer's weights get none), each inside its own tidy.
 */
function convolutionGradients(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  dy: tf.Tensor4D,
  strides: number | [number, number],
  pad: tf.Conv2DAttrs['pad'],
  dimRoundingMode?: tf.Conv2DAttrs['dimRoundingMode'],
): GradMap {
  const info = tf.backend_util.computeConv2DInfo(x.shape, filter.shape, strides, 1, pad, dimRoundingMode);
  const stride: [number, number] = [info.strideHeight, info.strideWidth];
  return {
    x: () => conv2dInputGradient(x.shape, filter, dy, stride, info.padInfo),
    filter: () => conv2dFilterGradient(x, filter.shape, dy, stride, info.padInfo),
  };
}

/**
 * conv2d plus a per-channel bias. On wasm one XNNPACK convolution with the bias inside (the FusedConv2D kernel: no
 * pass of its own over the output), differentiated by the gradient registered below; elsewhere conv2d then add.
 */
export function conv2dWithBias(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D,
  stride: number,
  pad: 'valid' | [[number, number], [number, number], [number, number], [number, number]],
): tf.Tensor4D {
  if (tf.getBackend() !== 'wasm') return tf.add(tf.conv2d(x, filter, stride, pad), bias);
  // The kernel itself, not tf.fused.conv2d: that op's own gradient needs Conv2DBackpropFilter, which wasm lacks.
  const attrs = { strides: stride, pad, dataFormat: 'NHWC', dilations: 1, activation: 'linear' };
  return tf.engine().runKernel('FusedConv2D', { x, filter, bias }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

tf.registerGradient({
  kernelName: 'FusedConv2D',
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const a = attrs as unknown as { strides: number; pad: 'valid' | [[number, number], [number, number], [number, number], [number, number]]; activation: string };
    if (a.activation !== 'linear') throw new Error(`FusedConv2D's gradient is registered for conv2dWithBias (linear), not ${a.activation}`);
    return { ...convolutionGradients(x, filter, dy as tf.Tensor4D, a.strides, a.pad), bias: () => channelSum(dy as tf.Tensor) };
  },
});

/**
 * Replace `kernelName`'s gradient on the wasm backend. `wasmGradient` returns null for cases it leaves to TF.js's
 * stock gradient, which every other backend keeps using.
 */
function overrideGradientOnWasm(
  kernelName: string,
  inputsToSave: string[],
  wasmGradient: (dy: tf.Tensor, saved: tf.Tensor[], attrs: tf.NamedAttrMap) => GradMap | null,
): void {
  const stock = tf.getGradient(kernelName);
  tf.unregisterGradient(kernelName);
  tf.registerGradient({
    kernelName,
    inputsToSave,
    gradFunc: (dy, saved, attrs) =>
      (tf.getBackend() === 'wasm' ? wasmGradient(dy as tf.Tensor, saved, attrs) : null) ?? stock.gradFunc(dy, saved, attrs),
  });
}

overrideGradientOnWasm('Conv2D', ['x', 'filter'], (dy, saved, attrs) => {
  const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
  const a = attrs as unknown as tf.Conv2DAttrs;
  const dilations = typeof a.dilations === 'number' ? [a.dilations, a.dilations] : a.dilations;
  if (a.dataFormat !== 'NHWC' || dilations.some((d) => d !== 1)) return null;
  return convolutionGradients(x, filter, dy as tf.Tensor4D, a.strides, a.pad, a.dimRoundingMode);
});

overrideGradientOnWasm('BatchMatMul', ['a', 'b'], (dy, saved, attrs) => {
  const [a, b] = saved as [tf.Tensor2D, tf.Tensor2D];
  if (a.rank !== 2 || b.rank !== 2) return null;
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const g = dy as tf.Tensor2D;
  // y = op(a)·op(b): the four cases of d/da and d/db, as in TF.js's stock gradient.
  if (!transposeA && !transposeB) return { a: () => matMul(g, b, false, true), b: () => matMul(a, g, true, false) };
  if (!transposeA && transposeB) return { a: () => matMul(g, b, false, false), b: () => matMul(g, a, true, false) };
  if (transposeA && !transposeB) return { a: () => matMul(b, g, false, true), b: () => matMul(a, g, false, false) };
  return { a: () => matMul(b, g, true, true), b: () => matMul(g, a, true, true) };
});

overrideGradientOnWasm('Add', ['a', 'b'], (dy, saved) => {
  const [a, b] = saved;
  // Only a bias: one operand shaped like dy, the other a vector along its last axis.
  const whole = (t: tf.Tensor) => tf.util.arraysEqual(t.shape, dy.shape);
  const bias = (t: tf.Tensor) => t.rank === 1 && dy.rank > 1 && t.shape[0] === dy.shape[dy.rank - 1];
  if (whole(a) && bias(b)) return { a: () => tf.reshape(dy, a.shape), b: () => channelSum(dy) };
  if (bias(a) && whole(b)) return { a: () => channelSum(dy), b: () => tf.reshape(dy, b.shape) };
  return null;
});
