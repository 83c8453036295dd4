// Full-size restore: the SD 2.1-base architecture (UNet 866 M parameters, host-placed on wasm; VAE 84 M), the
// official CaVE (75 M) and rank-16 LoRA (merged), random weights, on one backend in this process. Prints one JSON
// line per size: load time, restore time, seconds per megapixel, peak RSS.
//   tsx bench/restore-sd.ts --sizes 512,1024 --threads 2 [--backend wasm] [--vae-tile 1024,224]
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { CaVE, OFFICIAL_CAVE } from '@codiff/cave';
import { useBackend, withParameterPlacement, type BackendName } from '@codiff/nn';
import { AutoencoderKL, SD21_UNET_CONFIG, SD21_VAE_CONFIG, UNet2DConditionModel } from '@codiff/sd-unet';
import { CodiffGenerator, restoreImage, type RestoreStage } from '../src/index.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '512,1024' },
    threads: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'wasm' },
    'vae-tile': { type: 'string', default: '1024,224' },
  },
});
const backend = values.backend as BackendName;
await useBackend(backend, backend === 'wasm' ? { threads: Number(values.threads) } : {});
const [encoderTile, decoderTile] = values['vae-tile'].split(',').map(Number);
const t0 = performance.now();
const unet = withParameterPlacement(backend === 'wasm' ? 'host' : 'device', () => new UNet2DConditionModel(SD21_UNET_CONFIG));
const g = new CodiffGenerator({ unet, vae: new AutoencoderKL(SD21_VAE_CONFIG), cave: new CaVE(OFFICIAL_CAVE).eval() });
await g.mergeAdapters();
const loadSeconds = (performance.now() - t0) / 1000;
console.error(`built and merged in ${loadSeconds.toFixed(1)} s`);
for (const size of values.sizes.split(',').map(Number)) {
  // A smooth pattern with edges, like a photo as far as the arithmetic is concerned.
  const data = Uint8Array.from({ length: size * size * 3 }, (_, i) => {
    const p = Math.floor(i / 3), x = p % size, y = Math.floor(p / size);
    return (128 + 100 * Math.sin(x / 17 + (i % 3)) * Math.cos(y / 23) + ((x >> 5) + (y >> 5)) % 2 * 20) & 255;
  });
  const stages: Record<string, number> = {};
  let last = performance.now();
  const mark = (stage: RestoreStage, done: number, total: number) => {
    if (done !== total) return;
    const now = performance.now();
    stages[stage] = (stages[stage] ?? 0) + (now - last) / 1000;
    console.error(`${size}²: ${stage} ${done}/${total} after ${((now - last) / 1000).toFixed(1)} s`);
    last = now;
  };
  const start = performance.now();
  await restoreImage(g, { width: size, height: size, channels: 3, data }, { vaeEncoderTile: encoderTile, vaeDecoderTile: decoderTile, onProgress: mark });
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({
    backend, threads: backend === 'wasm' ? Number(values.threads) : undefined, size, vaeTile: [encoderTile, decoderTile],
    loadSeconds: +loadSeconds.toFixed(1), restoreSeconds: +seconds.toFixed(1), secondsPerMegapixel: +(seconds / (size * size / 1e6)).toFixed(1),
    stageSeconds: Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, +v.toFixed(1)])),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), tensors: tf.memory().numTensors,
  }));
}
g.dispose();
