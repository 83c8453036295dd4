import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Module } from '@codiff/nn';
import { torchMaxPool } from './pooling.js';

/** torchvision's Fire module: squeeze 1×1 + ReLU, then [ReLU(expand 1×1), ReLU(expand 3×3)] along channels. */
class Fire extends Module {
  readonly squeeze: Conv2d;
  readonly expand1x1: Conv2d;
  readonly expand3x3: Conv2d;
  constructor(inChannels: number, squeeze: number, expand: number) {
    super();
    this.squeeze = this.child('squeeze', new Conv2d(inChannels, squeeze, 1));
    this.expand1x1 = this.child('expand1x1', new Conv2d(squeeze, expand, 1));
    this.expand3x3 = this.child('expand3x3', new Conv2d(squeeze, expand, 3, { padding: 1 }));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const s = tf.relu(this.squeeze.forward(x));
      return tf.concat([tf.relu(this.expand1x1.forward(s)), tf.relu(this.expand3x3.forward(s))], 3);
    });
  }
}

/** Fire modules of `squeezenet1_1().features` by index: in, squeeze, expand (each of the two expands). */
const FIRES: readonly (readonly [index: number, inChannels: number, squeeze: number, expand: number])[] = [
  [3, 64, 16, 64], [4, 128, 16, 64],
  [6, 128, 32, 128], [7, 256, 32, 128],
  [9, 256, 48, 192], [10, 384, 48, 192], [11, 384, 64, 256], [12, 512, 64, 256],
];

class Sequential extends Module {
  readonly conv = this.child('0', new Conv2d(3, 64, 3, { stride: 2 }));
  readonly fires = new Map(FIRES.map(([i, cin, sq, ex]) => [i, this.child(String(i), new Fire(cin, sq, ex))]));
}

/**
 * SqueezeNet 1.1's convolutional trunk (torchvision `squeezenet1_1().features`, keys `features.<i>.*`): 3×3
 * stride-2 conv + ReLU, then Fire modules with three 3×3 stride-2 max-pools (ceil mode). NHWC activations.
 */
export class SqueezeNetFeatures extends Module {
  readonly features = this.child('features', new Sequential());
  /** Channels of LPIPS's seven slices relu1 … relu7. */
  readonly stageChannels: readonly number[] = [64, 128, 256, 384, 384, 512, 512];

  /** LPIPS's slices [0:2], [2:5], [5:8], [8:10], [10], [11], [12] of the trunk, each slice's output. */
  lpipsStages(x: tf.Tensor4D): tf.Tensor4D[] {
    const fire = (i: number, h: tf.Tensor4D) => this.features.fires.get(i)!.forward(h);
    const pool = (h: tf.Tensor4D) => torchMaxPool(h, 3, 2, true);
    const slices: ((h: tf.Tensor4D) => tf.Tensor4D)[] = [
      (h) => tf.relu(this.features.conv.forward(h)),
      (h) => fire(4, fire(3, pool(h))),
      (h) => fire(7, fire(6, pool(h))),
      (h) => fire(9, pool(h)),
      (h) => fire(10, h),
      (h) => fire(11, h),
      (h) => fire(12, h),
    ];
    const outputs: tf.Tensor4D[] = [];
    let h = x;
    for (const slice of slices) {
      const next: tf.Tensor4D = tf.tidy(() => slice(h));
      outputs.push(next);
      h = next;
    }
    return outputs;
  }
}
