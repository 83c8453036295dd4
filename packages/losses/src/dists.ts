import * as tf from '@tensorflow/tfjs-core';
import { Module, NnError, type HostTensor } from '@codiff/nn';
import { Vgg16Features, VGG16_STAGE_CHANNELS } from './vgg.js';

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];
/** DISTS's feature list is the image itself followed by the five VGG stages. */
const DISTS_CHANNELS = [3, ...VGG16_STAGE_CHANNELS];
const TOTAL_CHANNELS = DISTS_CHANNELS.reduce((a, c) => a + c, 0); // 1475
const C1 = 1e-6;
const C2 = 1e-6;

/**
 * Mean over H and W of NHWC → [B, C], as two short reductions (over W, then H) rather than one over H·W terms:
 * float32 accumulation over a whole 512² map drifts by ~5e-5 in DISTS on wasm; over ≤ 512 terms it does not.
 */
const spatialMean = (t: tf.Tensor): tf.Tensor => tf.mean(tf.mean(t, 2), 1);

/** The learnt per-channel weights of DISTS (`alpha`, `beta` in DISTS_pytorch's weights.pt). */
class DistsWeights extends Module {
  readonly alpha = this.param('alpha', [1, TOTAL_CHANNELS, 1, 1], 'same', 'ones');
  readonly beta = this.param('beta', [1, TOTAL_CHANNELS, 1, 1], 'same', 'ones');
}

/**
 * DISTS (Ding et al. 2020), as DISTS_pytorch computes it: for each of [image, relu1_2 … relu5_3] of a VGG16 with
 * L2 pooling, a texture term S1 comparing channel means and a structure term S2 comparing (co)variances, weighted
 * by alpha and beta normalised to sum 1; score = 1 − Σ(α·S1 + β·S2). 0 for identical images; differentiable.
 */
export class Dists {
  readonly weights = new DistsWeights();

  constructor(readonly vgg: Vgg16Features) {}

  /**
   * Load alpha/beta (torch layout, keys `alpha`, `beta`). Other keys equal to DISTS's fixed constants
   * (`mean`, `std`, `l2pool_filter`, as the golden files carry) are accepted and checked.
   */
  loadStateDict(dict: ReadonlyMap<string, HostTensor>): void {
    loadWithConstants(this.weights, dict, DISTS_CONSTANTS);
  }

  /**
   * Scores of image pairs: NHWC batches in [0, 1] of equal shape → [B]. Both images go through the VGG as one
   * batch; the result is differentiable in both.
   */
  score(reference: tf.Tensor4D, distorted: tf.Tensor4D): tf.Tensor1D {
    checkPair(reference, distorted);
    return tf.tidy(() => {
      const batch = reference.shape[0];
      const both = tf.concat([reference, distorted], 0);
      const normalised = tf.div(tf.sub(both, IMAGENET_MEAN), IMAGENET_STD) as tf.Tensor4D;
      const features = [both, ...this.vgg.stages(normalised, 'l2')];
      const alpha = tf.reshape(this.weights.alpha.value, [TOTAL_CHANNELS]);
      const beta = tf.reshape(this.weights.beta.value, [TOTAL_CHANNELS]);
      const total = tf.add(tf.sum(alpha), tf.sum(beta));
      const alphas = tf.split(tf.div(alpha, total), DISTS_CHANNELS);
      const betas = tf.split(tf.div(beta, total), DISTS_CHANNELS);
      let similarity: tf.Tensor = tf.zeros([batch]);
      features.forEach((f, k) => {
        const [x, y] = tf.split(f, [batch, batch], 0);
        const xMean = spatialMean(x);
        const yMean = spatialMean(y);
        const s1 = tf.div(tf.add(tf.mul(tf.mul(xMean, yMean), 2), C1), tf.add(tf.add(tf.square(xMean), tf.square(yMean)), C1));
        // Centred before the products: E[xy] − E[x]E[y] cancels catastrophically in float32.
        const xc = tf.sub(x, tf.reshape(xMean, [batch, 1, 1, -1]));
        const yc = tf.sub(y, tf.reshape(yMean, [batch, 1, 1, -1]));
        const xVar = spatialMean(tf.square(xc));
        const yVar = spatialMean(tf.square(yc));
        const cov = spatialMean(tf.mul(xc, yc));
        const s2 = tf.div(tf.add(tf.mul(cov, 2), C2), tf.add(tf.add(xVar, yVar), C2));
        similarity = tf.add(similarity, tf.sum(tf.add(tf.mul(alphas[k], s1), tf.mul(betas[k], s2)), 1));
      });
      return tf.sub(1, similarity) as tf.Tensor1D;
    });
  }

  dispose(): void {
    for (const p of this.weights.parameters()) p.dispose();
  }
}

const DISTS_CONSTANTS: Record<string, number[]> = {
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
  l2pool_filter: [0.0625, 0.125, 0.0625, 0.125, 0.25, 0.125, 0.0625, 0.125, 0.0625],
};

/**
 * Load `dict` into `module` strictly, except for entries named in `constants`: the model's fixed values, which some
 * checkpoints carry as buffers. Those are accepted only when they hold the same values.
 */
export function loadWithConstants(module: Module, dict: ReadonlyMap<string, HostTensor>, constants: Record<string, number[]>): void {
  const own = new Map<string, HostTensor>();
  for (const [key, t] of dict) {
    const expected = constants[key];
    if (!expected) own.set(key, t);
    else if (t.data.length !== expected.length || expected.some((v, i) => Math.abs(t.data[i] - v) > 1e-6 * Math.max(1, Math.abs(v)))) {
      throw new NnError(`'${key}' holds [${[...t.data.slice(0, 9)].join(', ')}], not the fixed [${expected.join(', ')}]`);
    }
  }
  module.loadStateDict(own);
}

export function checkPair(a: tf.Tensor, b: tf.Tensor): void {
  if (a.rank !== 4 || a.shape[3] !== 3) throw new NnError(`expected an NHWC RGB batch [B, H, W, 3], got shape [${a.shape}]`);
  if (a.shape.join() !== b.shape.join()) throw new NnError(`image shapes differ: [${a.shape}] vs [${b.shape}]`);
}
