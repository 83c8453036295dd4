import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, gelu, GroupNorm, LayerNorm, Linear, Module, ModuleList } from '@codiff/nn';
import { Attention } from './attention.js';

/** diffusers GEGLU: one Linear gives value and gate; value · gelu(gate) with exact GELU. */
class GEGLU extends Module {
  readonly proj: Linear;
  constructor(dim: number, inner: number) {
    super();
    this.proj = this.child('proj', new Linear(dim, inner * 2));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [value, gate] = tf.split(this.proj.forward(x), 2, -1);
      return tf.mul(value, gelu(gate)) as tf.Tensor3D;
    });
  }
}

/** Dropout (inference: identity). No parameters; present so the next layer keeps diffusers' index `net.2`. */
class Dropout extends Module {}

/** diffusers FeedForward: net.0 = GEGLU(C → 4C), net.1 = dropout, net.2 = Linear(4C → C). */
class FeedForward extends Module {
  readonly geglu: GEGLU;
  readonly out: Linear;
  constructor(dim: number) {
    super();
    this.geglu = new GEGLU(dim, 4 * dim);
    this.out = new Linear(4 * dim, dim);
    this.child('net', new ModuleList<Module>([this.geglu, new Dropout(), this.out]));
  }
  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => this.out.forward(this.geglu.forward(x)));
  }
}

/** diffusers BasicTransformerBlock: self-attention, cross-attention, GEGLU, each pre-LayerNorm + residual. */
export class BasicTransformerBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn1: Attention;
  readonly norm2: LayerNorm;
  readonly attn2: Attention;
  readonly norm3: LayerNorm;
  readonly ff: FeedForward;
  constructor(dim: number, heads: number, crossAttentionDim: number) {
    super();
    const dimHead = dim / heads;
    this.norm1 = this.child('norm1', new LayerNorm(dim));
    this.attn1 = this.child('attn1', new Attention(dim, { heads, dimHead, qkvBias: false }));
    this.norm2 = this.child('norm2', new LayerNorm(dim));
    this.attn2 = this.child('attn2', new Attention(dim, { heads, dimHead, qkvBias: false, crossAttentionDim }));
    this.norm3 = this.child('norm3', new LayerNorm(dim));
    this.ff = this.child('ff', new FeedForward(dim));
  }
  forward(x: tf.Tensor3D, context: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      let h = tf.add(this.attn1.forward(this.norm1.forward(x)), x) as tf.Tensor3D;
      h = tf.add(this.attn2.forward(this.norm2.forward(h), context), h) as tf.Tensor3D;
      return tf.add(this.ff.forward(this.norm3.forward(h)), h) as tf.Tensor3D;
    });
  }
}

/**
 * diffusers Transformer2DModel (continuous input): GroupNorm (eps 1e-6), proj_in, transformer blocks over the
 * H·W tokens, proj_out, residual. proj_in/proj_out are Linear on tokens (use_linear_projection, SD 2.x) or 1×1
 * convs (SD 1.x).
 */
export class Transformer2DModel extends Module {
  readonly norm: GroupNorm;
  readonly projIn: Linear | Conv2d;
  readonly transformerBlocks: ModuleList<BasicTransformerBlock>;
  readonly projOut: Linear | Conv2d;
  constructor(
    channels: number,
    heads: number,
    options: { crossAttentionDim: number; groups: number; layers: number; linearProjection: boolean },
  ) {
    super();
    this.norm = this.child('norm', new GroupNorm(options.groups, channels, 1e-6));
    const proj = () => (options.linearProjection ? new Linear(channels, channels) : new Conv2d(channels, channels, 1));
    this.projIn = this.child('proj_in', proj());
    this.transformerBlocks = this.child(
      'transformer_blocks',
      new ModuleList(Array.from({ length: options.layers }, () => new BasicTransformerBlock(channels, heads, options.crossAttentionDim))),
    );
    this.projOut = this.child('proj_out', proj());
  }

  forward(x: tf.Tensor4D, context: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, hgt, w, c] = x.shape;
      const normed = this.norm.forward(x);
      const toTokens = (t: tf.Tensor4D) => tf.reshape(t, [b, hgt * w, c]) as tf.Tensor3D;
      let h =
        this.projIn instanceof Linear ? this.projIn.forward(toTokens(normed)) : toTokens(this.projIn.forward(normed));
      for (const block of this.transformerBlocks.items) h = block.forward(h, context);
      const out =
        this.projOut instanceof Linear
          ? (tf.reshape(this.projOut.forward(h), [b, hgt, w, c]) as tf.Tensor4D)
          : this.projOut.forward(tf.reshape(h, [b, hgt, w, c]) as tf.Tensor4D);
      return tf.add(out, x) as tf.Tensor4D;
    });
  }
}
