import * as tf from '@tensorflow/tfjs-core';
import { tfToTorch, torchToTf, useBackend, type HostTensor, type Parameter } from '@codiff/nn';
import { loadDists } from '@codiff/losses/node';
import { CodiffGenerator, Discriminator } from '@codiff/pipeline';
import { readCodiffCheckpoint } from '@codiff/pipeline/node';
import { UNet2DConditionModel, unetConfigFromDiffusers } from '@codiff/sd-unet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTinyWeights, tinyConfigs, tinyParts } from '../../../test-support/codiff-tiny.js';
import { expectClose, golden, goldenJson, nhwcTensor, readAll, tensorAt } from '../../../test-support/tfjs.js';
import { AdamW, clipGradNorm, discriminatorLosses, generatorLosses, gradientsOf, realLatents, type Gradients, type Stage2Batch } from '../src/index.js';

const manifest = goldenJson('codiff-train', 'manifest.json') as {
  losses: Record<'l2_loss' | 'dists_loss' | 'generator_loss' | 'loss' | 'loss_d_unweighted' | 'loss_d', number>;
  measured: { gen_total_grad_norm_dedup: number; disc_total_grad_norm: number; gan_grad_enabled_global_norm: number };
};
const ADAMW = { lr: 1e-3, weightDecay: 1e-2 };

let step: Map<string, HostTensor>;
let g: CodiffGenerator;
let disc: Discriminator;
let dists: Awaited<ReturnType<typeof loadDists>>;
let batch: Stage2Batch;

/** A uint8 NHWC golden image batch in [0, 1]. */
const unit = (t: HostTensor) => tf.tidy(() => tf.div(tf.tensor4d(t.data, t.shape as [number, number, number, number]), 255) as tf.Tensor4D);

beforeAll(async () => {
  await useBackend('wasm');
  step = await readAll('codiff-train', 'train.safetensors');
  const weights = await readTinyWeights();
  g = CodiffGenerator.fromCheckpoint(tinyParts(weights), await readCodiffCheckpoint(golden('codiff-tiny', 'model.pkl')));
  // The discriminator's UNet is the same pretrained tiny UNet (without CODiff's LoRA); its head and tokens from the golden.
  disc = new Discriminator(new UNet2DConditionModel(unetConfigFromDiffusers(tinyConfigs.unet), { encoderOnly: true }));
  const encoderKeys = new Set([...disc.unet.namedParameters()].map(([k]) => k));
  disc.unet.loadStateDict(new Map([...weights.unet].filter(([k]) => encoderKeys.has(k))));
  disc.loadStateDict(new Map([...step].filter(([k]) => k.startsWith('disc_init.')).map(([k, t]) => [k.slice('disc_init.'.length), t])));
  dists = await loadDists(golden('dists-lpips', 'vgg16.safetensors'), golden('dists-lpips', 'dists_weights.safetensors'));
  batch = {
    lq: unit(tensorAt(step, 'input.lq_u8')),
    hq: unit(tensorAt(step, 'input.hq_u8')),
    noise: nhwcTensor(tensorAt(step, 'noise.gen_sample')),
    realNoise: nhwcTensor(tensorAt(step, 'noise.gt_sample')),
  };
});

afterAll(() => {
  g.dispose();
  disc.dispose();
  tf.dispose([batch.lq, batch.hq, batch.noise!, batch.realNoise!]);
});

/** Relative L2 error and cosine of a gradient in torch layout against the reference. */
function agreement(got: Float32Array, ref: Float32Array): { relL2: number; cosine: number } {
  let diff = 0, norm = 0, own = 0, dot = 0;
  for (let i = 0; i < ref.length; i++) {
    diff += (got[i] - ref[i]) ** 2;
    norm += ref[i] ** 2;
    own += got[i] ** 2;
    dot += got[i] * ref[i];
  }
  return { relL2: Math.sqrt(diff / norm), cosine: dot / Math.sqrt(norm * own) };
}

/**
 * Parameters after the first AdamW step within 1e-6 (the golden README's bound). The update is lr·g/(|g| + ε) there,
 * insensitive to gradient noise except where |g| is within the gradient tolerance (1e-2 relative): for
 * |g| < 1e-2·max|g| of the tensor, or < 1e-6, the update may land anywhere in ±lr, so the bound there is 2·lr. Returns how many elements needed the loose bound.
 */
function expectAdamWStep(name: string, got: Float32Array, want: Float32Array, grad: Float32Array): number {
  const small = Math.max(1e-6, 1e-2 * grad.reduce((m, g) => Math.max(m, Math.abs(g)), 0));
  let worst = 0, loose = 0;
  for (let i = 0; i < want.length; i++) {
    const tiny = Math.abs(grad[i]) < small;
    loose += tiny ? 1 : 0;
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / (tiny ? 2 * ADAMW.lr : 1e-6));
  }
  expect(worst, `${name} after AdamW (worst |Δ| / bound)`).toBeLessThanOrEqual(1);
  return loose;
}

/** A gradient or parameter (TF.js layout) in torch layout. */
async function torchLayout(p: Parameter, t: tf.Tensor): Promise<Float32Array> {
  return tfToTorch(p.layout, p.torchShape, (await t.data()) as Float32Array);
}

/**
 * The generator step's losses and gradients over the batch of 2, one sample at a time (each loss is a mean over the
 * batch, so the halves add up to it): a 2×192² tape does not fit wasm's heap, as stage-2 training accumulates
 * micro-batches.
 */
function generatorStep(gen: CodiffGenerator, optimiser: AdamW, options: { ganGradient?: boolean } = {}) {
  const losses = { total: 0, mse: 0, perceptual: 0, gan: 0 };
  let grads: Gradients | undefined;
  for (const i of [0, 1]) {
    const pick = (t: tf.Tensor4D) => tf.slice(t, [i, 0, 0, 0], [1, -1, -1, -1]);
    const sample = { lq: pick(batch.lq), hq: pick(batch.hq), noise: pick(batch.noise!) };
    const parts: Record<string, number> = {};
    const { value, grads: g } = gradientsOf(() => {
      const l = generatorLosses(gen, dists, disc, sample, options);
      for (const k of ['mse', 'perceptual', 'gan'] as const) parts[k] = l[k].dataSync()[0];
      return tf.div(l.total, 2) as tf.Scalar;
    }, optimiser);
    losses.total += value.dataSync()[0];
    for (const k of ['mse', 'perceptual', 'gan'] as const) losses[k] += parts[k] / 2;
    if (grads) {
      for (const [k, t] of g) {
        const sum = tf.add(grads.get(k)!, t);
        grads.get(k)!.dispose();
        grads.set(k, sum);
      }
      tf.dispose([...g.values()]);
    } else grads = g;
    tf.dispose([value, sample.lq, sample.hq, sample.noise]);
  }
  return { losses, grads: grads! };
}

describe('one official CODiff training step (golden/codiff-train, tiny models, batch 2 at 192², wasm)', () => {
  it('generator: losses, every gradient (564 tensors) and the AdamW step equal the official step', async () => {
    const trainable = g.trainableParameters();
    expect(trainable).toHaveLength(564);
    const params = new Map(trainable);
    const adamw = new AdamW(trainable, ADAMW);
    const before = tf.memory().numTensors;
    const { losses, grads } = generatorStep(g, adamw);
    expect(tf.memory().numTensors - before).toBe(grads.size);
    const ref = manifest.losses;
    expect(Math.abs(losses.mse - ref.l2_loss), 'l2').toBeLessThan(1e-5);
    expect(Math.abs(losses.perceptual - ref.dists_loss), 'dists').toBeLessThan(1e-5);
    expect(Math.abs(losses.gan - ref.generator_loss), 'generator (GAN) loss').toBeLessThan(1e-5);
    expect(Math.abs(losses.total - ref.loss), 'loss').toBeLessThan(1e-5);
    let worst = { name: '', relL2: 0, cosine: 1 };
    for (const [name, grad] of grads) {
      const p = params.get(name)!;
      const a = agreement(await torchLayout(p, grad), tensorAt(step, `grad.${name}`).data);
      if (a.relL2 > worst.relL2) worst = { name, ...a };
      expect(a.relL2, `${name} gradient rel. L2`).toBeLessThan(1e-2);
      expect(a.cosine, `${name} gradient cosine`).toBeGreaterThan(0.999);
    }
    const { norm } = await clipGradNorm(grads, 1.0);
    expect(Math.abs(norm / manifest.measured.gen_total_grad_norm_dedup - 1), 'global gradient norm').toBeLessThan(1e-3);
    tf.dispose([...grads.values()]);
    // The optimiser on its own: clipping and AdamW applied to the official gradients give the official parameters.
    const official: Gradients = new Map(trainable.map(([name, p]) => [name, tf.tensor(torchToTf(p.layout, tensorAt(step, `grad.${name}`)), p.shape)]));
    const { grads: clipped } = await clipGradNorm(official, 1.0);
    adamw.step(clipped);
    for (const [name, p] of trainable) expectAdamWStep(name, await torchLayout(p, p.value), tensorAt(step, `after_dedup.${name}`).data, tensorAt(step, `grad.${name}`).data);
    tf.dispose([...official.values(), ...clipped.values()]);
    console.info(`worst gradient: ${worst.name} rel. L2 ${worst.relL2.toExponential(2)}, cosine ${worst.cosine.toFixed(7)}`);
  });

  it('--gan-gradient: the adversarial gradient reaching the generator equals the official with grad enabled', async () => {
    // After the previous step the parameters moved: restore the golden start (model.pkl) first.
    const fresh = CodiffGenerator.fromCheckpoint(tinyParts(await readTinyWeights()), await readCodiffCheckpoint(golden('codiff-tiny', 'model.pkl')));
    const adamw = new AdamW(fresh.trainableParameters(), ADAMW);
    const params = new Map(fresh.trainableParameters());
    const withGan = generatorStep(fresh, adamw, { ganGradient: true });
    const without = generatorStep(fresh, adamw);
    expect(withGan.losses.total).toBe(without.losses.total);
    let diff = 0, ref = 0, dot = 0, own = 0;
    for (const [name, gw] of withGan.grads) {
      const p = params.get(name)!;
      const d = await torchLayout(p, tf.tidy(() => tf.sub(gw, without.grads.get(name)!)));
      const r = tensorAt(step, `gan_grad_enabled.${name}`).data;
      for (let i = 0; i < r.length; i++) {
        diff += (d[i] - r[i]) ** 2;
        ref += r[i] ** 2;
        own += d[i] ** 2;
        dot += d[i] * r[i];
      }
    }
    expect(Math.sqrt(ref)).toBeCloseTo(manifest.measured.gan_grad_enabled_global_norm, 4);
    // The difference of two gradients cancels most digits: compare globally, not per tensor.
    expect(Math.sqrt(diff / ref), 'adversarial gradient rel. L2').toBeLessThan(2e-2);
    expect(dot / Math.sqrt(ref * own), 'cosine').toBeGreaterThan(0.999);
    tf.dispose([...withGan.grads.values(), ...without.grads.values()]);
    fresh.dispose();
  });

  it('discriminator: real latents from the pretrained VAE, logits, BCE loss, head gradients and AdamW step', async () => {
    const fake = nhwcTensor(tensorAt(step, 'latents_pred'));
    const real = realLatents(g, batch.hq, batch.realNoise);
    await expectClose(real, tensorAt(step, 'gt_latents'), 'gt_latents');
    const [realLogits, fakeLogits] = [disc.logits(real), disc.logits(fake)];
    await expectClose(realLogits, tensorAt(step, 'logits.real'), 'logits.real');
    await expectClose(fakeLogits, tensorAt(step, 'logits.fake'), 'logits.fake');
    const trainable = disc.trainableParameters();
    const adamw = new AdamW(trainable, ADAMW);
    let unweighted = 0;
    const { value, grads } = gradientsOf(() => {
      const l = discriminatorLosses(disc, real, fake);
      unweighted = l.unweighted.dataSync()[0];
      return l.total;
    }, adamw);
    expect(Math.abs(unweighted - manifest.losses.loss_d_unweighted)).toBeLessThan(1e-5);
    expect(Math.abs((await value.data())[0] - manifest.losses.loss_d)).toBeLessThan(1e-7);
    const params = new Map(trainable);
    for (const [name, grad] of grads) {
      const p = params.get(name)!;
      const a = agreement(await torchLayout(p, grad), tensorAt(step, `disc_grad.${name}`).data);
      expect(a.relL2, `${name} gradient`).toBeLessThan(1e-2);
    }
    const { grads: clipped, norm } = await clipGradNorm(grads, 1.0);
    expect(Math.abs(norm / manifest.measured.disc_total_grad_norm - 1), 'global gradient norm').toBeLessThan(1e-3);
    adamw.step(clipped);
    for (const [name, p] of trainable) expectAdamWStep(name, await torchLayout(p, p.value), tensorAt(step, `disc_after.${name}`).data, tensorAt(step, `disc_grad.${name}`).data);
    tf.dispose([fake, real, realLogits, fakeLogits, value, ...grads.values()]);
  });
});

