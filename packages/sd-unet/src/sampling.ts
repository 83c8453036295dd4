import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Module } from '@codiff/nn';

/**
 * diffusers Downsample2D with a conv. `padding: 0` (VAE encoder) pads right and bottom by one before a stride-2
 * 3×3 conv; `padding: 1` (UNet) is a symmetric stride-2 conv.
 */
export class Downsample2D extends Module {
  readonly conv: Conv2d;
  constructor(
    channels: number,
    readonly padding: 0 | 1,
  ) {
    super();
    this.conv = this.child('conv', new Conv2d(channels, channels, 3, { stride: 2, padding }));
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const input = this.padding === 0 ? tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]) : x;
      return this.conv.forward(input);
    });
  }
}

/** diffusers Upsample2D with a conv: nearest-neighbour ×2, then a 3×3 conv. */
export class Upsample2D extends Module {
  readonly conv: Conv2d;
  constructor(channels: number) {
    super();
    this.conv = this.child('conv', new Conv2d(channels, channels, 3, { padding: 1 }));
  }

  forward(x: tf.Tensor4D, size?: [number, number]): tf.Tensor4D {
    const [, h, w] = x.shape;
    // Exactly ×2 (diffusers passes a size only to match an odd skip): the conv computed at x's resolution.
    // Other sizes: tf.image.resizeNearestNeighbor, whose cpu gradient is wrong for batches over 1 (see upsampleNearest2x).
    if (!size || (size[0] === h * 2 && size[1] === w * 2)) return this.conv.forwardUpsampled(x);
    return tf.tidy(() => this.conv.forward(tf.image.resizeNearestNeighbor(x, size)));
  }
}
