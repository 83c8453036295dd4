import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Module } from '@codiff/nn';
import type { RawImage } from '@codiff/jpeg-codec';

const LAYERS = 20;
const WIDTH = 64;
/** Pixels each output depends on beyond itself: one per 3×3 layer. */
const RECEPTIVE_MARGIN = LAYERS;
/**
 * Restored tiles' side. Each runs with its receptive margin around it, so the result equals the whole-image one;
 * memory is bounded by the tile (whole 768×512 images grew the wasm heap past 4 GB over a long run).
 */
const TILE = 256;

/** KAIR's `model` Sequential: convs at even indices 0, 2, …, 38 (the odd ones are parameter-free ReLUs). */
class Sequential extends Module {
  readonly convs = Array.from({ length: LAYERS }, (_, i) =>
    this.child(String(2 * i), new Conv2d(i === 0 ? 1 : WIDTH, i === LAYERS - 1 ? 1 : WIDTH, 3, { padding: 1 })),
  );
}

/**
 * DnCNN-3 (Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017): one blind grey model for denoising, ×2–4
 * super-resolution and JPEG deblocking. 20 3×3 convolutions of width 64 (BatchNorm already folded into them by the
 * authors), ReLU after all but the last; it predicts the residual, so restored = x − net(x). Keys as KAIR's
 * `DnCNN(in_nc=1, out_nc=1, nc=64, nb=20)`: `model.<2i>.weight/bias`.
 */
export class DnCNN extends Module {
  readonly model = this.child('model', new Sequential());

  /** The restored grey batch [N, H, W, 1] in [0, 1] (not clipped), from x in [0, 1]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let h: tf.Tensor4D = x;
      this.model.convs.forEach((conv, i) => {
        h = conv.forward(h);
        if (i < LAYERS - 1) h = tf.relu(h);
      });
      return tf.sub(x, h) as tf.Tensor4D;
    });
  }

  /** `forward` over a grey plane in [0, 1], in tiles with their receptive margin (equal to one whole-image pass). */
  async forwardTiled(plane: Float32Array, width: number, height: number): Promise<Float32Array> {
    const out = new Float32Array(width * height);
    for (let top = 0; top < height; top += TILE) {
      for (let left = 0; left < width; left += TILE) {
        const [x0, y0] = [Math.max(0, left - RECEPTIVE_MARGIN), Math.max(0, top - RECEPTIVE_MARGIN)];
        const [x1, y1] = [Math.min(width, left + TILE + RECEPTIVE_MARGIN), Math.min(height, top + TILE + RECEPTIVE_MARGIN)];
        const [w, h] = [x1 - x0, y1 - y0];
        const patch = new Float32Array(w * h);
        for (let y = 0; y < h; y++) patch.set(plane.subarray((y0 + y) * width + x0, (y0 + y) * width + x1), y * w);
        const input = tf.tensor4d(patch, [1, h, w, 1]);
        const result = this.forward(input);
        const values = (await result.data()) as Float32Array;
        tf.dispose([input, result]);
        const [tw, th] = [Math.min(TILE, width - left), Math.min(TILE, height - top)];
        for (let y = 0; y < th; y++) {
          const from = (top - y0 + y) * w + (left - x0);
          out.set(values.subarray(from, from + tw), (top + y) * width + left);
        }
      }
    }
    return out;
  }

  /**
   * Deblock an 8-bit image: grey directly; colour on the luma of the JPEG colour space (JFIF YCbCr), keeping the
   * chroma as decoded, since the model is grey-only. Output is round(clip(y, 0, 1)·255), the authors' protocol.
   */
  async restore(image: RawImage): Promise<RawImage> {
    const { width, height, channels, data } = image;
    const n = width * height;
    const luma = new Float32Array(n);
    if (channels === 1) for (let i = 0; i < n; i++) luma[i] = data[i] / 255;
    else for (let i = 0; i < n; i++) luma[i] = (0.299 * data[channels * i] + 0.587 * data[channels * i + 1] + 0.114 * data[channels * i + 2]) / 255;
    const restored = await this.forwardTiled(luma, width, height);
    const to8 = (v: number) => Math.round(Math.min(1, Math.max(0, v)) * 255);
    if (channels === 1) return { width, height, channels: 1, data: Uint8Array.from(restored, to8) };
    const out = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) {
      const [r, g, b] = [data[channels * i], data[channels * i + 1], data[channels * i + 2]];
      const cb = -0.168736 * r - 0.331264 * g + 0.5 * b;
      const cr = 0.5 * r - 0.418688 * g - 0.081312 * b;
      const yy = Math.min(1, Math.max(0, restored[i])) * 255;
      out[3 * i] = Math.min(255, Math.max(0, Math.round(yy + 1.402 * cr)));
      out[3 * i + 1] = Math.min(255, Math.max(0, Math.round(yy - 0.344136 * cb - 0.714136 * cr)));
      out[3 * i + 2] = Math.min(255, Math.max(0, Math.round(yy + 1.772 * cb)));
    }
    return { width, height, channels: 3, data: out };
  }
}
