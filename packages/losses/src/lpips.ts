import * as tf from '@tensorflow/tfjs-core';
import { Module, type HostTensor } from '@codiff/nn';
import { checkPair, loadWithConstants } from './dists.js';

/** LPIPS's ScalingLayer constants: inputs in [-1, 1] are mapped to ImageNet statistics. */
const SHIFT = [-0.03, -0.088, -0.188];
const SCALE = [0.458, 0.448, 0.45];
const NORM_EPS = 1e-10;

/** A linear head `lin<k>.model.1.weight` [1, C, 1, 1] (index 0 of `model` is a parameterless Dropout). */
class LinearHead extends Module {
  readonly model: HeadSequential;
  constructor(channels: number) {
    super();
    this.model = this.child('model', new HeadSequential(channels));
  }
}
class HeadSequential extends Module {
  readonly conv: HeadConv;
  constructor(channels: number) {
    super();
    this.conv = this.child('1', new HeadConv(channels));
  }
}
class HeadConv extends Module {
  readonly weight;
  constructor(channels: number) {
    super();
    this.weight = this.param('weight', [1, channels, 1, 1], 'same', 'ones');
  }
}

class LpipsHeads extends Module {
  readonly heads: LinearHead[];
  constructor(channels: readonly number[]) {
    super();
    this.heads = channels.map((c, k) => this.child(`lin${k}`, new LinearHead(c)));
  }
}

/**
 * The feature network under LPIPS (Vgg16Features for `net='vgg'`, SqueezeNetFeatures for `net='squeeze'`): its
 * stage outputs (NHWC) for an input already through the ScalingLayer.
 */
export type LpipsTrunk = Module & {
  readonly stageChannels: readonly number[];
  lpipsStages(x: tf.Tensor4D): tf.Tensor4D[];
};

export interface LpipsResult {
  /** [B] — the LPIPS distance of each pair. */
  readonly score: tf.Tensor1D;
  /** One [B] tensor per trunk stage (5 for VGG, 7 for SqueezeNet); they sum to `score`. */
  readonly perLayer: tf.Tensor1D[];
}

/**
 * LPIPS v0.1 (Zhang et al. 2018), as `lpips.LPIPS(net=…)(x0, x1, normalize=True)`: inputs in [0, 1] → [-1, 1] →
 * ScalingLayer; at each trunk stage (VGG16's relu1_2 … relu5_3, or SqueezeNet 1.1's relu1 … relu7), unit-normalise
 * each position's channel vector, square the difference, weight channels by the linear head, average over space;
 * sum the layers.
 */
export class Lpips {
  readonly heads: LpipsHeads;

  constructor(readonly trunk: LpipsTrunk) {
    this.heads = new LpipsHeads(trunk.stageChannels);
  }

  /**
   * Load the heads (`lin<k>.model.1.weight`, torch layout). `scaling_layer.shift/scale`, which lpips registers as
   * buffers, are accepted when they hold LPIPS's constants.
   */
  loadStateDict(dict: ReadonlyMap<string, HostTensor>): void {
    loadWithConstants(this.heads, dict, { 'scaling_layer.shift': SHIFT, 'scaling_layer.scale': SCALE });
  }

  /** Distances of image pairs: NHWC batches in [0, 1] of equal shape. Differentiable in both. */
  forward(reference: tf.Tensor4D, distorted: tf.Tensor4D): LpipsResult {
    checkPair(reference, distorted);
    const perLayer = tf.tidy(() => {
      const batch = reference.shape[0];
      const both = tf.concat([reference, distorted], 0);
      const scaled = tf.div(tf.sub(tf.sub(tf.mul(both, 2), 1), SHIFT), SCALE) as tf.Tensor4D;
      return this.trunk.lpipsStages(scaled).map((f, k) => {
        const unit = tf.div(f, tf.add(tf.sqrt(tf.sum(tf.square(f), 3, true)), NORM_EPS));
        const [x, y] = tf.split(unit, [batch, batch], 0);
        const weight = tf.reshape(this.heads.heads[k].model.conv.weight.value, [-1]);
        return tf.mean(tf.sum(tf.mul(tf.square(tf.sub(x, y)), weight), 3), [1, 2]) as tf.Tensor1D;
      });
    });
    const score = tf.tidy(() => tf.addN(perLayer) as tf.Tensor1D);
    return { score, perLayer };
  }

  /** Just the [B] distances. */
  score(reference: tf.Tensor4D, distorted: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => this.forward(reference, distorted).score);
  }

  dispose(): void {
    for (const p of this.heads.parameters()) p.dispose();
  }
}
