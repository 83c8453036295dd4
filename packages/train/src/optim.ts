import * as tf from '@tensorflow/tfjs-core';
import { tfToTorch, torchToTf, type HostTensor, type Parameter } from '@codiff/nn';
import { TrainError } from './errors.js';

export interface AdamOptions {
  lr: number;
  betas?: readonly [number, number];
  /** Added after the bias correction of √v, as PyTorch does (TF.js's own Adam adds it before). Default 1e-8. */
  eps?: number;
  weightDecay?: number;
}

/** Gradients by parameter name (TF.js layout, as the parameters). */
export type Gradients = Map<string, tf.Tensor>;

/**
 * torch.optim.Adam, update for update: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
 * p ← p − (lr/(1−β₁ᵗ))·m/(√v/√(1−β₂ᵗ) + ε). Weight decay, if any, is L2 added to the gradient (torch's Adam);
 * AdamW decouples it. Moments are kept on the device and saved in torch layout under `exp_avg.<name>`.
 */
export class Adam {
  lr: number;
  protected readonly betas: readonly [number, number];
  protected readonly eps: number;
  protected readonly weightDecay: number;
  private readonly params: Map<string, Parameter>;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();
  private steps = 0;

  constructor(params: Iterable<[string, Parameter]>, options: AdamOptions) {
    this.params = new Map(params);
    this.lr = options.lr;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    for (const [name, p] of this.params) {
      if (!p.trainable) throw new TrainError(`${name} is a buffer, not a trainable parameter`);
      this.moments.set(name, { m: tf.variable(tf.zeros(p.shape), false), v: tf.variable(tf.zeros(p.shape), false) });
    }
  }

  /** Optimiser steps taken (torch's `state['step']`). */
  get stepCount(): number {
    return this.steps;
  }

  /** The variables an optimiser step updates, in a fixed order (for tf.variableGrads). */
  get variables(): tf.Variable[] {
    return [...this.params.values()].map((p) => p.variable);
  }

  get names(): string[] {
    return [...this.params.keys()];
  }

  /** Apply one update from `grads` (every parameter must have one). */
  step(grads: Gradients): void {
    this.steps += 1;
    const [b1, b2] = this.betas;
    const stepSize = this.lr / (1 - b1 ** this.steps);
    const sqrtCorrection2 = Math.sqrt(1 - b2 ** this.steps);
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        let g = grads.get(name);
        if (!g) throw new TrainError(`no gradient for ${name}`);
        const { m, v } = this.moments.get(name)!;
        const w = p.variable;
        if (this.weightDecay !== 0) {
          if (this.decoupled) w.assign(tf.mul(w, 1 - this.lr * this.weightDecay));
          else g = tf.add(g, tf.mul(w, this.weightDecay));
        }
        m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
        v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtCorrection2), this.eps);
        w.assign(tf.sub(w, tf.mul(tf.div(m, denom), stepSize)));
      }
    });
  }

  /** Whether weight decay is decoupled from the gradient (AdamW). */
  protected get decoupled(): boolean {
    return false;
  }

  /** Moments in torch layout: `exp_avg.<name>`, `exp_avg_sq.<name>`. */
  async stateDict(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, p] of this.params) {
      const { m, v } = this.moments.get(name)!;
      out.set(`exp_avg.${name}`, { shape: p.torchShape, data: tfToTorch(p.layout, p.torchShape, (await m.data()) as Float32Array) });
      out.set(`exp_avg_sq.${name}`, { shape: p.torchShape, data: tfToTorch(p.layout, p.torchShape, (await v.data()) as Float32Array) });
    }
    return out;
  }

  loadStateDict(state: ReadonlyMap<string, HostTensor>, stepCount: number): void {
    for (const [name, p] of this.params) {
      const { m, v } = this.moments.get(name)!;
      for (const [key, target] of [[`exp_avg.${name}`, m], [`exp_avg_sq.${name}`, v]] as const) {
        const t = state.get(key);
        if (!t) throw new TrainError(`optimiser state has no ${key}`);
        if (t.data.length !== p.size) throw new TrainError(`optimiser state ${key} has ${t.data.length} values, the parameter ${p.size}`);
        tf.tidy(() => target.assign(tf.tensor(torchToTf(p.layout, t), p.shape)));
      }
    }
    this.steps = stepCount;
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

/** torch.optim.AdamW: the same update with decoupled weight decay p ← p·(1 − lr·wd) first (default wd 1e-2). */
export class AdamW extends Adam {
  constructor(params: Iterable<[string, Parameter]>, options: AdamOptions) {
    super(params, { weightDecay: 1e-2, ...options });
  }

  protected override get decoupled(): boolean {
    return true;
  }
}

/**
 * Scale every gradient by min(1, maxNorm/(‖g‖ + 1e-6)), ‖g‖ the global L2 norm, as torch's clip_grad_norm_.
 * Returns the new gradients (the old are disposed) and the norm before clipping.
 */
export async function clipGradNorm(grads: Gradients, maxNorm: number): Promise<{ grads: Gradients; norm: number }> {
  // Summed pairwise: addN over every parameter would bind more buffers than a WebGPU shader may (8 to 10).
  const total = tf.tidy(() => tf.sqrt([...grads.values()].map((g) => tf.sum(tf.square(g))).reduce((a, b) => tf.add(a, b))));
  const norm = (await total.data())[0];
  total.dispose();
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef === 1) return { grads, norm };
  const out: Gradients = new Map();
  for (const [k, g] of grads) {
    out.set(k, tf.mul(g, coef));
    g.dispose();
  }
  return { grads: out, norm };
}

/** Gradients of `loss` with respect to `optimiser`'s parameters; the loss value is kept (the caller disposes all). */
export function gradientsOf(loss: () => tf.Scalar, optimiser: Adam): { value: tf.Scalar; grads: Gradients } {
  const variables = optimiser.variables;
  const { value, grads } = tf.variableGrads(loss, variables);
  const byName: Gradients = new Map();
  optimiser.names.forEach((name, i) => byName.set(name, grads[variables[i].name]));
  return { value, grads: byName };
}
