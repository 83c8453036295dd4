import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Module } from '@codiff/nn';
import { torchMaxPool } from './pooling.js';

/**
 * torchvision's `vgg16().features` convolutions, by their index in that Sequential (the ReLUs and pools between
 * them have no parameters), so the keys are torchvision's `features.<i>.weight` / `.bias`.
 */
const VGG16_CONVS: readonly (readonly [index: number, inChannels: number, outChannels: number])[] = [
  [0, 3, 64], [2, 64, 64],
  [5, 64, 128], [7, 128, 128],
  [10, 128, 256], [12, 256, 256], [14, 256, 256],
  [17, 256, 512], [19, 512, 512], [21, 512, 512],
  [24, 512, 512], [26, 512, 512], [28, 512, 512],
];

/** The convolutions of each stage; a stage ends at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3. */
const STAGES: readonly (readonly number[])[] = [[0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28]];

/** Output channels of relu1_2 … relu5_3. */
export const VGG16_STAGE_CHANNELS: readonly number[] = [64, 128, 256, 512, 512];

/**
 * How a stage downsamples its input. `max`: VGG's 2×2 max-pool (LPIPS). `l2`: DISTS's L2 pooling,
 * √(blur(x²) + 1e-12) with the 3×3 Hann filter [½,1,½]ᵀ[½,1,½]/4, stride 2, zero padding 1 — an anti-aliased pool.
 */
export type VggPooling = 'max' | 'l2';

class Sequential extends Module {
  readonly convs = new Map<number, Conv2d>();
  constructor() {
    super();
    for (const [index, cin, cout] of VGG16_CONVS) {
      this.convs.set(index, this.child(String(index), new Conv2d(cin, cout, 3, { padding: 1 })));
    }
  }
}

/** VGG16's convolutional trunk, as used by DISTS and LPIPS. Activations are NHWC. */
export class Vgg16Features extends Module {
  readonly features = this.child('features', new Sequential());
  readonly stageChannels = VGG16_STAGE_CHANNELS;

  /** LPIPS's layers: the stages with VGG's own max-pools. */
  lpipsStages(x: tf.Tensor4D): tf.Tensor4D[] {
    return this.stages(x, 'max');
  }

  /** The five stage outputs relu1_2 … relu5_3 of an (already normalised) NHWC batch. */
  stages(x: tf.Tensor4D, pooling: VggPooling): tf.Tensor4D[] {
    const outputs: tf.Tensor4D[] = [];
    let h = x;
    STAGES.forEach((convs, stage) => {
      const next = tf.tidy(() => {
        let y = stage === 0 ? h : pool(h, pooling);
        for (const index of convs) y = tf.relu(this.features.convs.get(index)!.forward(y));
        return y;
      });
      outputs.push(next);
      h = next;
    });
    return outputs;
  }
}

function pool(x: tf.Tensor4D, pooling: VggPooling): tf.Tensor4D {
  if (pooling === 'max') return torchMaxPool(x, 2, 2);
  return tf.tidy(() => {
    // The separable [¼,½,¼] stride-2 blur equals a 2×2 mean (stride 1) then a 2×2 mean (stride 2) of the
    // zero-padded input. Written with average pools because TF.js wasm has no depthwise-conv input gradient.
    const padded = tf.pad(tf.square(x), [[0, 0], [1, 1], [1, 1], [0, 0]]);
    const blurred = tf.avgPool(tf.avgPool(padded, 2, 1, 'valid'), 2, 2, 'valid');
    return tf.sqrt(tf.add(blurred, 1e-12)) as tf.Tensor4D;
  });
}
