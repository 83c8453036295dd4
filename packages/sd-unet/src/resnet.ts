import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, GroupNorm, Linear, Module, silu } from '@codiff/nn';

export interface ResnetOptions {
  groups: number;
  eps: number;
  /** Channels of the time embedding added after conv1 (UNet); omitted in the VAE. */
  tembChannels?: number;
}

/** diffusers ResnetBlock2D: norm1 → SiLU → conv1 (+ time_emb_proj) → norm2 → SiLU → conv2, plus shortcut. */
export class ResnetBlock2D extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly timeEmbProj: Linear | undefined;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly convShortcut: Conv2d | undefined;

  constructor(inChannels: number, outChannels: number, options: ResnetOptions) {
    super();
    this.norm1 = this.child('norm1', new GroupNorm(options.groups, inChannels, options.eps));
    this.conv1 = this.child('conv1', new Conv2d(inChannels, outChannels, 3, { padding: 1 }));
    this.timeEmbProj = options.tembChannels ? this.child('time_emb_proj', new Linear(options.tembChannels, outChannels)) : undefined;
    this.norm2 = this.child('norm2', new GroupNorm(options.groups, outChannels, options.eps));
    this.conv2 = this.child('conv2', new Conv2d(outChannels, outChannels, 3, { padding: 1 }));
    this.convShortcut = inChannels !== outChannels ? this.child('conv_shortcut', new Conv2d(inChannels, outChannels, 1)) : undefined;
  }

  forward(x: tf.Tensor4D, temb?: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = this.conv1.forward(silu(this.norm1.forward(x)) as tf.Tensor4D);
      if (this.timeEmbProj && temb) {
        const t = this.timeEmbProj.forward(silu(temb) as tf.Tensor2D);
        h = tf.add(h, tf.reshape(t, [t.shape[0], 1, 1, t.shape[1]]));
      }
      h = this.conv2.forward(silu(this.norm2.forward(h)) as tf.Tensor4D);
      const shortcut = this.convShortcut ? this.convShortcut.forward(x) : x;
      return tf.add(shortcut, h);
    });
  }
}
