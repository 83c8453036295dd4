import { NnError } from './errors.js';
import type { HostTensor } from './safetensors.js';

/**
 * How a parameter is laid out in TF.js relative to PyTorch — the only place layouts are converted:
 * - `conv2d`: torch [out, in, kh, kw] ↔ TF.js [kh, kw, in, out]
 * - `convTranspose2d`: torch [in, out, kh, kw] ↔ TF.js [kh, kw, out, in] (tf.conv2dTranspose's filter)
 * - `linear`: torch [out, in] ↔ TF.js [in, out] (so y = x·W)
 * - `same`: identical (biases, norm weights, embeddings)
 */
export type ParamLayout = 'conv2d' | 'convTranspose2d' | 'linear' | 'same';

export function tfShape(layout: ParamLayout, torchShape: readonly number[]): number[] {
  switch (layout) {
    case 'conv2d': {
      const [o, i, kh, kw] = torchShape;
      return [kh, kw, i, o];
    }
    case 'convTranspose2d': {
      const [i, o, kh, kw] = torchShape;
      return [kh, kw, o, i];
    }
    case 'linear':
      return [torchShape[1], torchShape[0]];
    case 'same':
      return [...torchShape];
  }
}

/** Reorder host data from torch layout to TF.js layout. */
export function torchToTf(layout: ParamLayout, t: HostTensor): Float32Array {
  return permute(t.data, [...t.shape], TORCH_TO_TF[layout]);
}

// Both 4-D layouts put (kh, kw) first and swap the two channel axes.
const TORCH_TO_TF: Record<ParamLayout, number[] | null> = { conv2d: [2, 3, 1, 0], convTranspose2d: [2, 3, 1, 0], linear: [1, 0], same: null };
const TF_TO_TORCH: Record<ParamLayout, number[] | null> = { conv2d: [3, 2, 0, 1], convTranspose2d: [3, 2, 0, 1], linear: [1, 0], same: null };

/** Reorder host data from TF.js layout back to torch layout. */
export function tfToTorch(layout: ParamLayout, torchShape: readonly number[], data: Float32Array): Float32Array {
  const shape = tfShape(layout, torchShape);
  return permute(data, shape, TF_TO_TORCH[layout]);
}

/** NCHW ↔ NHWC for activations held on the host (golden vectors, images). */
export function nchwToNhwc(t: HostTensor): HostTensor {
  const [n, c, h, w] = t.shape;
  return { shape: [n, h, w, c], data: permute(t.data, [n, c, h, w], [0, 2, 3, 1]) };
}

export function nhwcToNchw(t: HostTensor): HostTensor {
  const [n, h, w, c] = t.shape;
  return { shape: [n, c, h, w], data: permute(t.data, [n, h, w, c], [0, 3, 1, 2]) };
}

/** out[...] = data transposed by `perm` (null: copy). */
function permute(data: Float32Array, shape: number[], perm: number[] | null): Float32Array {
  const numel = shape.reduce((a, d) => a * d, 1);
  if (numel !== data.length) throw new NnError(`shape ${JSON.stringify(shape)} does not match ${data.length} values`);
  if (!perm) return data.slice();
  if (perm.length !== shape.length) throw new NnError(`expected a rank-${perm.length} tensor, got shape ${JSON.stringify(shape)}`);
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const outShape = perm.map((p) => shape[p]);
  const strides = perm.map((p) => inStrides[p]);
  const out = new Float32Array(numel);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < numel; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d] * strides[d];
    out[o] = data[src];
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}
