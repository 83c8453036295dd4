// Stage-2 step time (generator forward, MSE + LPIPS-squeeze, backward, AdamW) of the lite configuration, in this
// process; --profile lists the kernels of one step.
//   tsx bench/stage2-step.ts [--batch 16] [--threads 2] [--steps 3] [--perceptual <weight>] [--profile]
// (--perceptual 0: the term is only logged, and its network runs no backward pass)
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { ParameterGroup, useBackend } from '@codiff/nn';
import { CaVE } from '@codiff/cave';
import { CodiffGenerator, PixelUnshuffleAutoencoder, pixelUnshuffleConfig } from '@codiff/pipeline';
import { UNet2DConditionModel, unetConfigFromDiffusers } from '@codiff/sd-unet';
import { loadLpipsSqueeze } from '@codiff/losses/node';
import { AdamW, gradientsOf, generatorLosses } from '../src/index.js';
import { loadStage1Config, loadStage2Config } from '../src/node.js';
import { sharedWeights } from '../../../test-support/golden.js';
import { medianStepMs, printKernelProfile } from './step-timing.js';

const { values } = parseArgs({ options: { batch: { type: 'string', default: '16' }, threads: { type: 'string', default: '2' }, steps: { type: 'string', default: '3' }, perceptual: { type: 'string' }, profile: { type: 'boolean', default: false } } });
const [batch, threads, steps] = [values.batch, values.threads, values.steps].map(Number);
await useBackend('wasm', { threads });
const config = await loadStage2Config('lite');
const weights = { ...config.weights, ...(values.perceptual !== undefined && { perceptual: Number(values.perceptual) }) };
// The frozen CaVE of the lite run: stage 1's lite configuration (lite-b64 has the same widths).
const caveConfig = (await loadStage1Config('lite')).model;
const model = config.model!;
const g = new CodiffGenerator(
  { unet: new UNet2DConditionModel(unetConfigFromDiffusers(model.unet)), vae: new PixelUnshuffleAutoencoder(pixelUnshuffleConfig(model.pixelUnshuffle)), cave: new CaVE(caveConfig) },
  { training: 'full', residual: model.residual },
);
const lpips = await loadLpipsSqueeze(sharedWeights('squeezenet1_1/features.safetensors'), sharedWeights('lpips/squeeze.safetensors'));
const adam = new AdamW(new ParameterGroup(g.trainableParameters()).namedTrainableParameters(), { lr: 1e-4 });
const p = config.patch;
const data = tf.tidy(() => ({ lq: tf.randomUniform([batch, p, p, 3]) as tf.Tensor4D, hq: tf.randomUniform([batch, p, p, 3]) as tf.Tensor4D }));
const step = async () => {
  const { value, grads } = gradientsOf(() => generatorLosses(g, { score: (a, b) => lpips.score(a, b) }, undefined, data, { weights }).total, adam);
  adam.step(grads);
  await value.data();
  tf.dispose([value, ...grads.values()]);
};
const median = await medianStepMs(step, steps);
if (values.profile) await printKernelProfile(step);
console.log(JSON.stringify({ config: 'stage2-lite', threads, batch, patch: p, perceptual: weights.perceptual, medianStepMs: median }));
