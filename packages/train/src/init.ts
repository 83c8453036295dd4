import * as tf from '@tensorflow/tfjs-core';
import { BatchNorm2d, Conv2d, ConvTranspose2d, GroupNorm, Linear, torchToTf, type Module, type Parameter } from '@codiff/nn';
import type { CodiffGenerator, Discriminator } from '@codiff/pipeline';
import { Rng } from './rng.js';

/**
 * The official trainer's initialisation (KAIR's `init_weights(init_type='orthogonal', gain=0.2)`), drawn from
 * `seed` so that a run is reproducible: conv, transposed-conv and linear weights orthogonal × 0.2 with zero
 * biases; BatchNorm weights U(0.1, 1) and zero biases. Buffers keep their defaults.
 */
export function officialInit(model: Module, seed: number): void {
  const rng = new Rng(seed);
  for (const [, m] of model.namedModules()) {
    if (m instanceof Conv2d || m instanceof ConvTranspose2d || m instanceof Linear) {
      assign(m.weight, orthogonal(m.weight.torchShape, rng, 0.2));
      if (m.bias) assign(m.bias, new Float32Array(m.bias.size));
    } else if (m instanceof BatchNorm2d) {
      assign(m.weight, Float32Array.from({ length: m.channels }, () => 0.1 + 0.9 * rng.random()));
      assign(m.bias, new Float32Array(m.channels));
    }
  }
}

/**
 * A fresh stage-2 generator as the official code starts it, drawn from `seed`: LoRA A ~ N(0, 1/r²) (peft's gaussian
 * init), B = 0 (so the generator starts as the pretrained model), `proj` with torch's Linear default U(±1/√in). A
 * UNet trained from scratch starts as diffusers builds one: torch's default conv and linear init, unit norms; with the
 * generator's input skip, conv_out starts at zero so that the first restoration is the JPEG itself.
 */
export function initGenerator(g: CodiffGenerator, seed: number): void {
  const rng = Rng.derive(seed, 1);
  if (g.training === 'full') {
    for (const [, m] of g.unet.namedModules()) if (m instanceof Conv2d || m instanceof Linear) torchDefault(m, rng);
    const out = g.unet.convOut;
    if (g.residual && out) for (const p of [out.weight, out.bias]) if (p) assign(p, new Float32Array(p.size));
  }
  for (const [name, p] of g.trainableParameters()) {
    if (name.includes('.lora_A.')) {
      const r = p.torchShape[0];
      assign(p, Float32Array.from({ length: p.size }, () => rng.normal() / r));
    }
  }
  torchDefault(g.proj, rng);
}

/** A fresh discriminator, from `seed`: the head with torch's default layer init, the 77 tokens N(0, 1). */
export function initDiscriminator(d: Discriminator, seed: number): void {
  const rng = Rng.derive(seed, 2);
  for (const [, m] of d.cls_pred_branch.namedModules()) {
    if (m instanceof Conv2d) torchDefault(m, rng);
    else if (m instanceof GroupNorm) {
      assign(m.weight, new Float32Array(m.channels).fill(1));
      assign(m.bias, new Float32Array(m.channels));
    }
  }
  assign(d.embeddings, Float32Array.from({ length: d.embeddings.size }, () => rng.normal()));
}

/** torch's default Linear/Conv2d init: weight and bias U(±1/√fan_in). */
function torchDefault(m: Linear | Conv2d, rng: Rng): void {
  const fanIn = m.weight.torchShape.slice(1).reduce((a, d) => a * d, 1);
  const bound = 1 / Math.sqrt(fanIn);
  for (const p of [m.weight, m.bias]) if (p) assign(p, Float32Array.from({ length: p.size }, () => (2 * rng.random() - 1) * bound));
}

function assign(p: Parameter, torchData: Float32Array): void {
  tf.tidy(() => p.variable.assign(tf.tensor(torchToTf(p.layout, { shape: p.torchShape, data: torchData }), p.shape)));
}

/**
 * torch.nn.init.orthogonal_: the tensor viewed as rows = shape[0] × cols = the rest, filled with a (semi-)orthogonal
 * matrix (orthonormal rows, or columns when there are more rows than columns) times `gain`. Gram–Schmidt in
 * float64 on Gaussian vectors, which gives the same (Haar) distribution as torch's QR with sign correction.
 */
export function orthogonal(shape: readonly number[], rng: Rng, gain: number): Float32Array {
  const rows = shape[0];
  const cols = shape.slice(1).reduce((a, d) => a * d, 1);
  const [n, len] = rows <= cols ? [rows, cols] : [cols, rows]; // n orthonormal vectors of length len
  const vectors: Float64Array[] = [];
  while (vectors.length < n) {
    const v = Float64Array.from({ length: len }, () => rng.normal());
    for (let pass = 0; pass < 2; pass++) {
      for (const u of vectors) {
        let dot = 0;
        for (let i = 0; i < len; i++) dot += u[i] * v[i];
        for (let i = 0; i < len; i++) v[i] -= dot * u[i];
      }
    }
    let norm = 0;
    for (let i = 0; i < len; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm);
    if (norm < 1e-8) continue; // a draw in the span of the others: draw again
    for (let i = 0; i < len; i++) v[i] /= norm;
    vectors.push(v);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = gain * (rows <= cols ? vectors[r][c] : vectors[c][r]);
  return out;
}
