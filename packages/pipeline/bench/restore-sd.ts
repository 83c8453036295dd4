// Full-size restore: the SD 2.1-base architecture (UNet 866 M parameters, host-placed on wasm; VAE 84 M), the
// official CaVE (75 M) and rank-16 LoRA (merged), random weights, on one backend in this process. Prints one JSON
// line per size: load time, restore time, seconds per megapixel, peak RSS. With --model, the weights come from a
// folder that bench/torch_codiff.py make-model wrote (unet/, vae/, cave.safetensors, proj.safetensors), so that
// PyTorch restores with the same ones; --save writes each size's result as raw 8-bit RGB (PREFIX-SIZE.rgb).
//   tsx bench/restore-sd.ts --sizes 512,1024 --threads 2 [--backend wasm] [--vae-tile 1024,224] [--model DIR --save PREFIX]
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { CaVE, OFFICIAL_CAVE } from '@codiff/cave';
import { loadCave } from '@codiff/cave/node';
import { useBackend, withParameterPlacement, type BackendName } from '@codiff/nn';
import { readStateDictFile } from '@codiff/nn/node';
import { AutoencoderKL, SD21_UNET_CONFIG, SD21_VAE_CONFIG, UNet2DConditionModel } from '@codiff/sd-unet';
import { loadUNet, loadVae } from '@codiff/sd-unet/node';
import { CodiffGenerator, restoreImage, type RestoreStage } from '../src/index.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '512,1024' },
    threads: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'wasm' },
    'vae-tile': { type: 'string', default: '1024,224' },
    model: { type: 'string' },
    save: { type: 'string' },
  },
});
const backend = values.backend as BackendName;
await useBackend(backend, backend === 'wasm' ? { threads: Number(values.threads) } : {});
const [encoderTile, decoderTile] = values['vae-tile'].split(',').map(Number);
const t0 = performance.now();
const host = backend === 'wasm';
const model = values.model;
const g = model
  ? new CodiffGenerator({
      unet: await loadUNet(join(model, 'unet'), { host }),
      vae: await loadVae(join(model, 'vae')),
      cave: (await loadCave(join(model, 'cave.safetensors'))).eval(),
    })
  : new CodiffGenerator({
      unet: withParameterPlacement(host ? 'host' : 'device', () => new UNet2DConditionModel(SD21_UNET_CONFIG)),
      vae: new AutoencoderKL(SD21_VAE_CONFIG),
      cave: new CaVE(OFFICIAL_CAVE).eval(),
    });
if (model) g.proj.loadStateDict(await readStateDictFile(join(model, 'proj.safetensors')));
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
  const restored = await restoreImage(g, { width: size, height: size, channels: 3, data }, { vaeEncoderTile: encoderTile, vaeDecoderTile: decoderTile, onProgress: mark });
  const seconds = (performance.now() - start) / 1000;
  if (values.save) await writeFile(`${values.save}-${size}.rgb`, restored.data);
  console.log(JSON.stringify({
    backend, threads: backend === 'wasm' ? Number(values.threads) : undefined, size, vaeTile: [encoderTile, decoderTile],
    loadSeconds: +loadSeconds.toFixed(1), restoreSeconds: +seconds.toFixed(1), secondsPerMegapixel: +(seconds / (size * size / 1e6)).toFixed(1),
    // WebGPU queues work and runs it when a result is read, so its stage marks time the dispatch, not the work.
    stageSeconds: backend === 'webgpu' ? undefined : Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, +v.toFixed(1)])),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), tensors: tf.memory().numTensors,
  }));
}
g.dispose();
