import * as tf from '@tensorflow/tfjs-core';
import { replicatePad } from '@codiff/nn';
import { PipelineError } from './errors.js';

/** How the restored colours are tied back to the JPEG's: the official AdaIN or wavelet fix, or not at all. */
export type ColorFix = 'adain' | 'wavelet' | 'none';
export const COLOR_FIXES: readonly ColorFix[] = ['adain', 'wavelet', 'none'];

/** Per-channel mean and std (unbiased variance + 1e-5, as the official `calc_mean_std`) of [1, H, W, C]. */
export function channelMeanStd(x: tf.Tensor4D): { mean: tf.Tensor; std: tf.Tensor } {
  return tf.tidy(() => {
    const n = x.shape[1] * x.shape[2];
    const mean = tf.mean(x, [1, 2], true);
    const variance = tf.div(tf.sum(tf.square(tf.sub(x, mean)), [1, 2], true), n - 1);
    return { mean, std: tf.sqrt(tf.add(variance, 1e-5)) };
  });
}

/** AdaIN: the restored image's per-channel statistics replaced by the JPEG's. Not clamped. */
export function adainColorFix(content: tf.Tensor4D, style: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const c = channelMeanStd(content), s = channelMeanStd(style);
    return tf.add(tf.mul(tf.div(tf.sub(content, c.mean), c.std), s.std), s.mean) as tf.Tensor4D;
  });
}

const BLUR = [
  [1 / 16, 1 / 8, 1 / 16],
  [1 / 8, 1 / 4, 1 / 8],
  [1 / 16, 1 / 8, 1 / 16],
];

/** The official `wavelet_blur`: a 3×3 [1,2,1]² / 16 blur per channel, dilated by `radius`, replicate padding. */
function waveletBlur(x: tf.Tensor4D, radius: number): tf.Tensor4D {
  return tf.tidy(() => {
    const channels = x.shape[3];
    const kernel = tf.tile(tf.reshape(tf.tensor2d(BLUR), [3, 3, 1, 1]), [1, 1, channels, 1]) as tf.Tensor4D;
    return tf.depthwiseConv2d(edgePadded(x, radius), kernel, 1, 'valid', 'NHWC', radius);
  });
}

function edgePadded(x: tf.Tensor4D, r: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (r >= h || r >= w) throw new PipelineError(`the wavelet colour fix needs images larger than ${r} px on each side (got ${h}×${w})`);
  return replicatePad(x, { top: r, bottom: r, left: r, right: r });
}

/** The official `wavelet_decomposition` (5 levels, dilation 2^i): high frequencies and the remaining low band. */
export function waveletDecomposition(x: tf.Tensor4D, levels = 5): { high: tf.Tensor4D; low: tf.Tensor4D } {
  return tf.tidy(() => {
    let high: tf.Tensor4D = tf.zerosLike(x);
    let low = x;
    for (let i = 0; i < levels; i++) {
      const next = waveletBlur(low, 2 ** i);
      high = tf.add(high, tf.sub(low, next));
      low = next;
    }
    return { high, low };
  });
}

/** Wavelet colour fix: the restored image's high frequencies over the JPEG's low band. Not clamped. */
export function waveletColorFix(content: tf.Tensor4D, style: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.add(waveletDecomposition(content).high, waveletDecomposition(style).low) as tf.Tensor4D);
}

/** torchvision's ToPILImage on a float image: ·255 then truncation toward zero (`.byte()`), not rounding. */
export function toUint8(x01: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.cast(tf.mul(x01, 255), 'int32'));
}

/**
 * The official output path from the generator's image in [−1, 1] to 8-bit RGB [1, H, W, 3] (int32 values 0..255):
 * truncate (image·0.5 + 0.5)·255, then, with a colour fix, fix those 8-bit values /255 against the JPEG's /255,
 * clamp to [0, 1] and truncate again. float32 throughout (the official fp16 run rounds each op to half precision).
 */
export function officialUint8(image: tf.Tensor4D, jpeg01: tf.Tensor4D, fix: ColorFix): tf.Tensor4D {
  return tf.tidy(() => {
    const first = toUint8(tf.add(tf.mul(image, 0.5), 0.5));
    if (fix === 'none') return first as tf.Tensor4D;
    const content = tf.div(tf.cast(first, 'float32'), 255) as tf.Tensor4D;
    const fixed = fix === 'adain' ? adainColorFix(content, jpeg01) : waveletColorFix(content, jpeg01);
    return toUint8(tf.clipByValue(fixed, 0, 1)) as tf.Tensor4D;
  });
}
