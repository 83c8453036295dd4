// The tiny CODiff of ../shared/golden (unet-tiny, vae-tiny, codiff-tiny's CaVE), for the pipeline and training tests.
import type { HostTensor } from '@codiff/nn';
import { caveFromStateDict } from '@codiff/cave/node';
import { AutoencoderKL, UNet2DConditionModel, unetConfigFromDiffusers, vaeConfigFromDiffusers } from '@codiff/sd-unet';
import { goldenJson, readAll } from './tfjs.js';

export const tinyConfigs = goldenJson('codiff-tiny', 'configs.json') as { unet: Record<string, unknown>; vae: Record<string, unknown> };

/** The golden weights, read once per test file. */
export async function readTinyWeights() {
  const [unet, vae, cave] = await Promise.all([readAll('unet-tiny', 'weights.safetensors'), readAll('vae-tiny', 'weights.safetensors'), readAll('codiff-tiny', 'cave.safetensors')]);
  return { unet, vae, cave };
}

/** Fresh tiny UNet, VAE and CaVE (eval) with the golden base weights. */
export function tinyParts(weights: { unet: Map<string, HostTensor>; vae: Map<string, HostTensor>; cave: Map<string, HostTensor> }) {
  const unet = new UNet2DConditionModel(unetConfigFromDiffusers(tinyConfigs.unet));
  unet.loadStateDict(weights.unet);
  const vae = new AutoencoderKL(vaeConfigFromDiffusers(tinyConfigs.vae));
  vae.loadStateDict(weights.vae);
  // The golden CaVE omits num_batches_tracked (eval never reads it); ours keeps it as a buffer.
  const cave = caveFromStateDict(withBatchCounters(weights.cave));
  return { unet, vae, cave };
}

function withBatchCounters(dict: Map<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map(dict);
  for (const key of dict.keys()) {
    if (key.endsWith('.running_mean')) out.set(key.replace(/running_mean$/, 'num_batches_tracked'), { shape: [], data: new Float32Array([0]) });
  }
  return out;
}
