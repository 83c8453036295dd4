// DISTS forward and forward+backward (gradient for the distorted image) at 256², TF.js wasm vs PyTorch CPU
// (Debian's python3-torch), same random VGG (the golden one), same run.
//   nx run losses:bench   (CODIFF_PYTHON selects the Python with torch; default /usr/bin/python3)
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, wasmThreadCount } from '@codiff/nn';
import { loadDists } from '../src/node.js';
import { GOLDEN_DIR } from '../../../test-support/golden.js';

const here = dirname(fileURLToPath(import.meta.url));
const SIZE = 256;
const weights = join(GOLDEN_DIR, 'dists-lpips');

/** Best of three timed runs after a warm-up, in seconds. */
async function best(fn: () => tf.Tensor): Promise<number> {
  fn().dispose();
  let min = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const y = fn();
    await y.data();
    min = Math.min(min, (performance.now() - t) / 1000);
    y.dispose();
  }
  return min;
}

await useBackend('wasm');
const dists = await loadDists(join(weights, 'vgg16.safetensors'), join(weights, 'dists_weights.safetensors'));
const reference = tf.randomUniform([1, SIZE, SIZE, 3]) as tf.Tensor4D;
const distorted = tf.randomUniform([1, SIZE, SIZE, 3]) as tf.Tensor4D;
const forward = await best(() => dists.score(reference, distorted));
const forwardBackward = await best(() => tf.grad((x: tf.Tensor) => tf.sum(dists.score(reference, x as tf.Tensor4D)))(distorted));

const python = process.env.CODIFF_PYTHON ?? '/usr/bin/python3';
const torchRuns = [1, 2].map((threads) => {
  const r = spawnSync(python, [join(here, 'torch_dists.py'), '--weights', weights, '--threads', String(threads), '--size', String(SIZE)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch side failed (${python}): ${r.stderr.slice(-500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
});

console.log(`DISTS at ${SIZE}², batch 1: TF.js wasm (${wasmThreadCount()} thread(s), CODIFF_WASM_THREADS) vs PyTorch ${torchRuns[0].torch} CPU`);
console.log('                         ours (s)   torch 1t (s)   torch 2t (s)   ours / torch-1t');
for (const [label, ours, key] of [
  ['forward', forward, 'dists_forward_s'],
  ['forward + backward', forwardBackward, 'dists_forward_backward_s'],
] as const) {
  const [t1, t2] = torchRuns.map((r) => r[key]);
  console.log(`${label.padEnd(24)} ${ours.toFixed(3).padStart(8)}   ${t1.toFixed(3).padStart(12)}   ${t2.toFixed(3).padStart(12)}   ${(ours / t1).toFixed(2).padStart(15)}`);
}
