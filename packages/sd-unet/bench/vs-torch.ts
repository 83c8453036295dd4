// Side by side in one run: @codiff/sd-unet on TF.js wasm vs PyTorch CPU (Debian's python3-torch) on the full-size
// SD 2.1-base UNet at 32×32 latents and VAE encode+decode at 256², same configuration, random weights; plus conv
// GFLOP/s forward and forward+backward (3×3, 320→320 channels, 64×64).
//   nx run sd-unet:bench       (CODIFF_PYTHON selects the Python with torch; default /usr/bin/python3)
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend, wasmThreadCount, withParameterPlacement } from '@codiff/nn';
import { AutoencoderKL, SD21_UNET_CONFIG, SD21_VAE_CONFIG, UNet2DConditionModel } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Best of `repeats` timed runs after one warm-up, in seconds. */
async function best(fn: () => tf.Tensor | Promise<tf.Tensor>, repeats = 2): Promise<number> {
  (await fn()).dispose();
  let min = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    const y = await fn();
    await y.data();
    min = Math.min(min, (performance.now() - t) / 1000);
    y.dispose();
  }
  return min;
}

await useBackend('wasm');
const ours: Record<string, number> = {};
{
  const unet = withParameterPlacement('host', () => new UNet2DConditionModel(SD21_UNET_CONFIG));
  const z = tf.randomNormal([1, 32, 32, 4]) as tf.Tensor4D;
  const ctx = tf.randomNormal([1, 77, 1024]) as tf.Tensor3D;
  ours.unet_32x32_s = await best(() => unet.forward(z, 499, ctx));
  unet.dispose();
  tf.dispose([z, ctx]);
}
{
  const vae = new AutoencoderKL(SD21_VAE_CONFIG);
  const img = tf.randomUniform([1, 256, 256, 3], -1, 1) as tf.Tensor4D;
  ours.vae_encode_decode_256_s = await best(() => {
    const d = vae.encode(img);
    const y = vae.decode(d.mean);
    tf.dispose([d.moments, d.mean, d.logvar, d.std]);
    return y;
  });
  vae.dispose();
  img.dispose();
}
{
  const flops = 2 * 64 * 64 * 320 * 320 * 9;
  const x = tf.randomNormal([1, 64, 64, 320]) as tf.Tensor4D;
  const w = tf.variable(tf.randomNormal([3, 3, 320, 320], 0, 0.02));
  ours.conv_fwd_gflops = flops / (await best(() => tf.conv2d(x, w as tf.Tensor4D, 1, 'same'), 5)) / 1e9;
  ours.conv_fwd_bwd_gflops =
    (3 * flops) /
    (await best(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.conv2d(x, w as tf.Tensor4D, 1, 'same')) as tf.Scalar, [w]);
      tf.dispose(Object.values(grads));
      return value;
    }, 5)) /
    1e9;
  tf.dispose([x, w]);
}

const python = process.env.CODIFF_PYTHON ?? '/usr/bin/python3';
const torchRuns = [1, 2].map((threads) => {
  const r = spawnSync(python, [join(here, 'torch_sd.py'), '--threads', String(threads)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch side failed (${python}): ${r.stderr.slice(-500)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
});

const rows: [string, string, boolean][] = [
  ['UNet forward, 32×32 latents (s)', 'unet_32x32_s', true],
  ['VAE encode + decode, 256² (s)', 'vae_encode_decode_256_s', true],
  ['conv 3×3 320→320 @64² forward (GFLOP/s)', 'conv_fwd_gflops', false],
  ['conv forward + backward (GFLOP/s)', 'conv_fwd_bwd_gflops', false],
];
console.log(`TF.js wasm (${wasmThreadCount()} thread(s), CODIFF_WASM_THREADS; UNet weights host-held) vs PyTorch ${torchRuns[0].torch} CPU`);
console.log('                                              ours   torch 1 thread   torch ' + torchRuns[1].threads + ' threads   ratio ours/torch-1t');
for (const [label, key, isTime] of rows) {
  const [t1, tn] = torchRuns.map((r) => r[key]);
  const ratio = isTime ? ours[key] / t1 : t1 / ours[key];
  console.log(`  ${label.padEnd(42)} ${ours[key].toFixed(2).padStart(7)} ${t1.toFixed(2).padStart(14)} ${tn.toFixed(2).padStart(15)}   ${ratio.toFixed(2)}× ${isTime ? 'the time' : 'the time (inverse of GFLOP/s)'}`);
}
