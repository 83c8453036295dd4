import * as tf from '@tensorflow/tfjs-core';
import type { RawImage } from '@codiff/jpeg-codec';
import type { Dists, Lpips } from '@codiff/losses';
import { psnr, psnrB, ssim } from '@codiff/metrics';

/** One restoration (or the JPEG itself) measured against its ground truth. */
export interface Scores {
  /** dB on Y (colour, rounded as MATLAB's rgb2ycbcr) or on the grey value. */
  readonly psnr: number;
  readonly ssim: number;
  /** Blocking-aware PSNR (Yim & Bovik 2011), same channel. */
  readonly psnrB: number;
  /** LPIPS v0.1 with the ImageNet SqueezeNet 1.1 trunk. */
  readonly lpips?: number;
  /** LPIPS v0.1, VGG16 trunk, when VGG weights were given. */
  readonly lpipsVgg?: number;
  readonly dists?: number;
}

/** The perceptual models available for a run; each one missing leaves its column out. */
export interface PerceptualModels {
  readonly lpips?: Lpips;
  readonly lpipsVgg?: Lpips;
  readonly dists?: Dists;
}

/** [1, H, W, 3] in [0, 1]; grey is repeated to three channels, as the perceptual models are colour networks. */
function toTensor(image: RawImage): tf.Tensor4D {
  const { width, height, channels, data } = image;
  const out = new Float32Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) out[3 * i + c] = data[channels * i + (channels === 1 ? 0 : c)] / 255;
  }
  return tf.tensor4d(out, [1, height, width, 3]);
}

/** PSNR, SSIM and PSNR-B on Y/grey, and each perceptual score whose model is given. */
export async function measure(reference: RawImage, test: RawImage, models: PerceptualModels = {}): Promise<Scores> {
  const on = { on: 'y8' } as const;
  const scores: { -readonly [K in keyof Scores]: Scores[K] } = {
    psnr: psnr(reference, test, on),
    ssim: ssim(reference, test, on),
    psnrB: psnrB(reference, test, on),
  };
  const perceptual = [
    ['lpips', models.lpips],
    ['lpipsVgg', models.lpipsVgg],
    ['dists', models.dists],
  ] as const;
  if (perceptual.some(([, model]) => model)) {
    const [x0, x1] = [toTensor(reference), toTensor(test)];
    try {
      for (const [key, model] of perceptual) {
        if (!model) continue;
        const score = model.score(x0, x1);
        scores[key] = (await score.data())[0];
        score.dispose();
      }
    } finally {
      tf.dispose([x0, x1]);
    }
  }
  return scores;
}
