import * as tf from '@tensorflow/tfjs-core';
import { NnError } from './errors.js';
import { Module, type Parameter } from './module.js';
import { conv2dWithBias } from './gradients.js';
import { channelSum, interleave2x2, matMul, spatialMean, upsampleNearest2x } from './ops.js';

/**
 * An extra path added to a layer's output, computed from the same input: y = layer(x) + Σ branch(x). This is how
 * adapters such as LoRA attach without changing the layer's own parameters or keys.
 */
export interface LayerBranch {
  /** The branch's contribution, or null when it currently contributes nothing. */
  apply(x: tf.Tensor): tf.Tensor | null;
}

function withBranches<T extends tf.Tensor>(y: T, x: tf.Tensor, branches: ReadonlySet<LayerBranch>): T {
  let out: tf.Tensor = y;
  for (const b of branches) {
    const extra = b.apply(x);
    if (extra) out = tf.add(out, extra);
  }
  return out as T;
}

/** torch.nn.Conv2d on NHWC activations; symmetric zero padding as in torch. */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly options: { stride?: number; padding?: number; bias?: boolean } = {},
  ) {
    super();
    this.weight = this.param('weight', [outChannels, inChannels, kernel, kernel], 'conv2d');
    this.bias = options.bias === false ? undefined : this.param('bias', [outChannels], 'same', 'zeros');
  }

  /** Additive paths on this layer's input (e.g. LoRA); see LayerBranch. */
  readonly branches = new Set<LayerBranch>();

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => withBranches(this.convolve(x, this.weight.value as tf.Tensor4D, this.bias?.value as tf.Tensor1D | undefined), x, this.branches));
  }

  /**
   * This convolution, then `norm`. In eval mode the normalisation is a per-channel affine map, folded into one
   * convolution's filter and bias (W·s and (b − μ)·s + β, s = γ/√(σ² + ε)): a pass over the activations fewer, and
   * the gradients are those of the same ops. In train mode (batch statistics), the two layers one after the other.
   */
  forwardWithBatchNorm(x: tf.Tensor4D, norm: BatchNorm2d): tf.Tensor4D {
    if (norm.training || this.branches.size > 0) return norm.forward(this.forward(x));
    return tf.tidy(() => {
      const scale = tf.mul(norm.weight.value, tf.rsqrt(tf.add(norm.runningVar.value, norm.eps)));
      const centredBias = this.bias ? tf.sub(this.bias.value, norm.runningMean.value) : tf.neg(norm.runningMean.value);
      const bias = tf.add(tf.mul(centredBias, scale), norm.bias.value) as tf.Tensor1D;
      return this.convolve(x, tf.mul(this.weight.value, scale) as tf.Tensor4D, bias);
    });
  }

  /**
   * This convolution (3×3, stride 1, padding 1) on x upsampled ×2 by nearest neighbour, computed at x's resolution.
   * Each of the four output phases (row and column parity) sees only two distinct input rows and columns, so it is a
   * 2×2 convolution of x whose taps are sums of the 3×3 filter's: 16 instead of 36 multiply-adds per channel pair and
   * low-resolution pixel, and no upsampled copy of x. With branches (LoRA reads the upsampled input) or another
   * geometry: the upsample, then the convolution.
   */
  forwardUpsampled(x: tf.Tensor4D): tf.Tensor4D {
    if (this.kernel !== 3 || (this.options.stride ?? 1) !== 1 || this.options.padding !== 1 || this.branches.size > 0) {
      return tf.tidy(() => this.forward(upsampleNearest2x(x)));
    }
    return tf.tidy(() => {
      const filters = phaseFilters(this.weight.value as tf.Tensor4D);
      const bias = this.bias?.value as tf.Tensor1D | undefined;
      // Phase (r, s) reads rows i−1, i when r = 0 and i, i+1 when r = 1 (columns likewise): padding on that side.
      const phase = (r: number, s: number) => {
        const pad: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [1 - r, r], [1 - s, s], [0, 0]];
        const filter = filters[2 * r + s];
        return bias ? conv2dWithBias(x, filter, bias, 1, pad) : tf.conv2d(x, filter, 1, pad);
      };
      return interleave2x2([phase(0, 0), phase(0, 1), phase(1, 0), phase(1, 1)]);
    });
  }

  private convolve(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D | undefined): tf.Tensor4D {
    const p = this.options.padding ?? 0;
    const pad: 'valid' | [[number, number], [number, number], [number, number], [number, number]] = p === 0 ? 'valid' : [[0, 0], [p, p], [p, p], [0, 0]];
    const stride = this.options.stride ?? 1;
    return bias ? conv2dWithBias(x, filter, bias, stride, pad) : tf.conv2d(x, filter, stride, pad);
  }
}

/**
 * A 3×3 filter ([kh, kw, cin, cout]) as the four 2×2 filters of Conv2d.forwardUpsampled, phases (row, column) in the
 * order (0, 0), (0, 1), (1, 0), (1, 1). Upsampled, rows 2i−1, 2i, 2i+1 are input rows i−1, i, i: phase 0's taps are
 * [W₀, W₁ + W₂]; rows 2i, 2i+1, 2i+2 are i, i, i+1: phase 1's are [W₀ + W₁, W₂]. Columns likewise.
 */
function phaseFilters(filter: tf.Tensor4D): tf.Tensor4D[] {
  const byParity = (f: tf.Tensor4D, axis: 0 | 1): tf.Tensor4D[] => {
    const [first, middle, last] = tf.split(f, 3, axis);
    return [tf.concat([first, tf.add(middle, last)], axis), tf.concat([tf.add(first, middle), last], axis)] as tf.Tensor4D[];
  };
  return byParity(filter, 0).flatMap((rowPhase) => byParity(rowPhase, 1));
}

/**
 * torch.nn.ConvTranspose2d on NHWC activations for kernel = stride and no padding (each input pixel paints its
 * own k×k block, as in U-Net decoders). That is one matMul and a rearrangement, whose gradients every backend
 * has (wasm lacks the Conv2DBackpropFilter kernel tf.conv2dTranspose's filter gradient needs).
 */
export class ConvTranspose2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly options: { stride?: number; bias?: boolean } = {},
  ) {
    super();
    if ((options.stride ?? 1) !== kernel) {
      throw new NnError(`ConvTranspose2d supports kernel = stride only (got kernel ${kernel}, stride ${options.stride ?? 1})`);
    }
    this.weight = this.param('weight', [inChannels, outChannels, kernel, kernel], 'convTranspose2d');
    this.bias = options.bias === false ? undefined : this.param('bias', [outChannels], 'same', 'zeros');
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, h, w] = x.shape;
      const k = this.kernel;
      // [kh, kw, out, in] → [in, kh·kw·out]: y[b,i,j,(di,dj,o)] = Σ_c x[b,i,j,c]·W[c,o,di,dj].
      const filter = tf.reshape(tf.transpose(this.weight.value, [3, 0, 1, 2]), [this.inChannels, k * k * this.outChannels]) as tf.Tensor2D;
      const y = matMul(tf.reshape(x, [b * h * w, this.inChannels]) as tf.Tensor2D, filter);
      // (b·i, j, di, dj·o) → (b·i, di, j, dj·o) = out[b, i·k+di, j·k+dj, o]; rank 4 keeps every backend's transpose fast.
      const blocks = tf.transpose(tf.reshape(y, [b * h, w, k, k * this.outChannels]), [0, 2, 1, 3]);
      const out = tf.reshape(blocks, [b, h * k, w * k, this.outChannels]) as tf.Tensor4D;
      return this.bias ? tf.add(out, this.bias.value) : out;
    });
  }
}

/**
 * torch.nn.BatchNorm2d on NHWC activations. Eval mode normalises with the running statistics; train mode with
 * the batch mean and biased variance, and updates the running statistics with torch's momentum convention
 * (running ← (1−momentum)·running + momentum·batch, the variance unbiased), as a side effect of the forward.
 */
export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Parameter;
  readonly runningVar: Parameter;
  readonly batchesTracked: Parameter;
  constructor(
    readonly channels: number,
    readonly options: { eps?: number; momentum?: number } = {},
  ) {
    super();
    this.weight = this.param('weight', [channels], 'same', 'ones');
    this.bias = this.param('bias', [channels], 'same', 'zeros');
    this.runningMean = this.buffer('running_mean', [channels], 'zeros');
    this.runningVar = this.buffer('running_var', [channels], 'ones');
    this.batchesTracked = this.buffer('num_batches_tracked', [], 'zeros');
  }

  get eps(): number {
    return this.options.eps ?? 1e-5;
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    const eps = this.eps;
    const [gamma, beta] = [this.weight.value as tf.Tensor1D, this.bias.value as tf.Tensor1D];
    if (!this.training) return tf.batchNorm(x, this.runningMean.value as tf.Tensor1D, this.runningVar.value as tf.Tensor1D, beta, gamma, eps);
    // Train mode as one op with the analytic gradient (as torch's): a few passes over the activations instead of the
    // dozen that differentiating the moments op by op takes.
    const n = x.size / this.channels;
    const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [input, g, b, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
      const mean = tf.div(channelSum(input), n) as tf.Tensor1D;
      const variance = tf.div(channelSum(tf.square(tf.sub(input, mean))), n) as tf.Tensor1D;
      this.updateRunningStatistics(mean, variance, n);
      save([input, mean, variance, g]);
      return {
        value: tf.batchNorm(input, mean, variance, b, g, eps),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, m, v, w] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
          const normalised = tf.batchNorm(xs, m, v, undefined, undefined, eps);
          const dBeta = channelSum(dy);
          const dGamma = channelSum(tf.mul(dy, normalised));
          // dx = γ/σ · (dy − (dβ + x̂·dγ)/n)
          const scale = tf.mul(w, tf.rsqrt(tf.add(v, eps)));
          const dx = tf.sub(tf.mul(dy, scale), tf.add(tf.mul(normalised, tf.mul(scale, tf.div(dGamma, n))), tf.mul(scale, tf.div(dBeta, n))));
          return [dx, dGamma, dBeta];
        },
      };
    });
    return normalise(x, gamma, beta) as tf.Tensor4D;
  }

  private updateRunningStatistics(mean: tf.Tensor, biasedVariance: tf.Tensor, n: number): void {
    const m = this.options.momentum ?? 0.1;
    const blend = (running: Parameter, batch: tf.Tensor) => running.variable.assign(tf.add(tf.mul(running.value, 1 - m), tf.mul(batch, m)));
    blend(this.runningMean, mean);
    blend(this.runningVar, tf.mul(biasedVariance, n / Math.max(1, n - 1)));
    this.batchesTracked.variable.assign(tf.add(this.batchesTracked.value, 1));
  }
}

/** torch.nn.Linear on the last axis of any-rank input. */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | undefined;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.param('weight', [outFeatures, inFeatures], 'linear');
    this.bias = options.bias === false ? undefined : this.param('bias', [outFeatures], 'same', 'zeros');
  }

  /** Additive paths on this layer's input (e.g. LoRA); see LayerBranch. */
  readonly branches = new Set<LayerBranch>();

  forward<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => {
      const shape = x.shape;
      const flat = tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D;
      let y: tf.Tensor = tf.matMul(flat, this.weight.value as tf.Tensor2D);
      if (this.bias) y = tf.add(y, this.bias.value);
      return withBranches(tf.reshape(y, [...shape.slice(0, -1), this.outFeatures]) as T, x, this.branches);
    });
  }
}

/** torch.nn.GroupNorm on NHWC activations (biased variance, affine). */
export class GroupNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(
    readonly groups: number,
    readonly channels: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param('weight', [channels], 'same', 'ones');
    this.bias = this.param('bias', [channels], 'same', 'zeros');
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, , , c] = x.shape;
      const perGroup = c / this.groups;
      // Means through `spatialMean` and broadcasts over [b, 1, 1, c], not tf.moments on [b, h·w, groups, c/groups]:
      // on wasm its reductions transpose the activations first and its broadcasts take the slow path (GN's share of
      // codiff-lite's UNet fell from about 700 to 250 ms of kernel time at 768×512).
      const groupMean = (perChannel: tf.Tensor2D) =>
        tf.reshape(tf.broadcastTo(tf.mean(tf.reshape(perChannel, [b, this.groups, perGroup]), 2, true), [b, this.groups, perGroup]), [b, 1, 1, c]);
      const centered = tf.sub(x, groupMean(spatialMean(x)));
      const variance = groupMean(spatialMean(tf.square(centered) as tf.Tensor4D));
      const scale = tf.mul(tf.rsqrt(tf.add(variance, this.eps)), this.weight.value);
      return tf.add(tf.mul(centered, scale), this.bias.value) as tf.Tensor4D;
    });
  }
}

/** torch.nn.LayerNorm over the last axis. */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param('weight', [dim], 'same', 'ones');
    this.bias = this.param('bias', [dim], 'same', 'zeros');
  }

  forward<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps)));
      return tf.add(tf.mul(normed, this.weight.value), this.bias.value) as T;
    });
  }
}

export const silu = (x: tf.Tensor): tf.Tensor => tf.tidy(() => tf.mul(x, tf.sigmoid(x)));

/** Exact (erf) GELU, as torch.nn.functional.gelu's default. */
export const gelu = (x: tf.Tensor): tf.Tensor => tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
