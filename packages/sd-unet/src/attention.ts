import * as tf from '@tensorflow/tfjs-core';
import { GroupNorm, Linear, Module, ModuleList, scaledDotProductAttention } from '@codiff/nn';

export interface AttentionOptions {
  heads: number;
  dimHead: number;
  /** Width of the key/value input (cross-attention); defaults to the query width (self-attention). */
  crossAttentionDim?: number;
  /** Bias on to_q/to_k/to_v (the VAE has it, the UNet does not); to_out.0 always has one. */
  qkvBias: boolean;
  /** GroupNorm before attention (VAE mid-block), with its eps. */
  groupNorm?: { groups: number; eps: number };
}

/** diffusers Attention: to_q, to_k, to_v, to_out.0 (and group_norm for the VAE), heads split per channel. */
export class Attention extends Module {
  readonly groupNorm: GroupNorm | undefined;
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: ModuleList<Linear>;

  constructor(
    readonly queryDim: number,
    readonly options: AttentionOptions,
  ) {
    super();
    const inner = options.heads * options.dimHead;
    const kvDim = options.crossAttentionDim ?? queryDim;
    this.groupNorm = options.groupNorm
      ? this.child('group_norm', new GroupNorm(options.groupNorm.groups, queryDim, options.groupNorm.eps))
      : undefined;
    this.toQ = this.child('to_q', new Linear(queryDim, inner, { bias: options.qkvBias }));
    this.toK = this.child('to_k', new Linear(kvDim, inner, { bias: options.qkvBias }));
    this.toV = this.child('to_v', new Linear(kvDim, inner, { bias: options.qkvBias }));
    this.toOut = this.child('to_out', new ModuleList([new Linear(inner, queryDim)]));
  }

  /** Tokens in, tokens out: x [B, T, C], context [B, S, C'] (self-attention when omitted). */
  forward(x: tf.Tensor3D, context?: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const kv = context ?? x;
      const out = scaledDotProductAttention(this.toQ.forward(x), this.toK.forward(kv), this.toV.forward(kv), this.options.heads);
      return this.toOut.items[0].forward(out);
    });
  }

  /** The VAE's spatial self-attention: group_norm, attention over H·W tokens, residual added. */
  forwardSpatial(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, h, w, c] = x.shape;
      const normed = this.groupNorm ? this.groupNorm.forward(x) : x;
      const tokens = tf.reshape(normed, [b, h * w, c]) as tf.Tensor3D;
      return tf.add(tf.reshape(this.forward(tokens), [b, h, w, c]), x) as tf.Tensor4D;
    });
  }
}
