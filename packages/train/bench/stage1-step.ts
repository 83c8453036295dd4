// Stage-1 step time (forward + backward + Adam) of a CaVE configuration on one backend, in this process.
//   tsx bench/stage1-step.ts --channels 16,32,64,128 --blocks 2 --patch 96 --batch 8 --threads 2 [--steps 5] [--profile]
// Prints one JSON line (--profile: then the kernels of one step by time, to stderr). bench/vs-torch.sh runs it beside PyTorch on the same configuration.
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, type BackendName } from '@codiff/nn';
import { CaVE, caveParameterCount } from '@codiff/cave';
import { Adam, gradientsOf, stage1Losses } from '../src/index.js';
import { medianStepMs, printKernelProfile } from './step-timing.js';

const { values } = parseArgs({
  options: {
    channels: { type: 'string', default: '16,32,64,128' },
    blocks: { type: 'string', default: '2' },
    patch: { type: 'string', default: '96' },
    batch: { type: 'string', default: '8' },
    threads: { type: 'string', default: '1' },
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '5' },
    profile: { type: 'boolean', default: false },
  },
});
const channels = values.channels.split(',').map(Number) as [number, number, number, number];
const [blocks, patch, batch, threads, steps] = [values.blocks, values.patch, values.batch, values.threads, values.steps].map(Number);
await useBackend(values.backend as BackendName, { threads });
const cave = new CaVE({ channels, blocks }).train();
const adam = new Adam(cave.namedTrainableParameters(), { lr: 1e-4 });
const data = tf.tidy(() => ({ lq: tf.randomUniform([batch, patch, patch, 3]) as tf.Tensor4D, hq: tf.randomUniform([batch, patch, patch, 3]) as tf.Tensor4D, target: tf.randomUniform([batch]) as tf.Tensor1D }));
const step = async () => {
  const { value, grads } = gradientsOf(() => stage1Losses(cave, data).total, adam);
  adam.step(grads);
  await value.data();
  tf.dispose([value, ...grads.values()]);
};
const median = await medianStepMs(step, steps);
if (values.profile) await printKernelProfile(step);
const peakRss = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ backend: values.backend, threads, channels, blocks, patch, batch, parameters: caveParameterCount(cave), medianStepMs: median, peakRssMiB: Math.round(peakRss / 2 ** 20) }));
