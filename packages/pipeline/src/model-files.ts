import { caveFromStateDict, type CaVE } from '@codiff/cave';
import { bytesSource, SafetensorsFile, type HostTensor } from '@codiff/nn';
import { UNet2DConditionModel, unetConfigFromDiffusers } from '@codiff/sd-unet';
import { checkpointFromSafetensors } from './checkpoint.js';
import { PipelineError } from './errors.js';
import { CodiffGenerator } from './generator.js';
import { PixelUnshuffleAutoencoder } from './pixel-unshuffle.js';

/** Reads one file of a model folder by its path in the folder ('unet/config.json', …): fetch in a browser, fs in Node. */
export type ModelFileReader = (path: string) => Promise<Uint8Array>;

/**
 * The files of a model folder whose UNet is trained in full on the pixel-unshuffle stand-in (codiff-lite), as
 * `saveCodiffModel` writes them.
 */
export const STAND_IN_MODEL_FILES = [
  'unet/config.json',
  'unet/diffusion_pytorch_model.safetensors',
  'vae/config.json',
  'codiff.safetensors',
  'cave.safetensors',
] as const;

/**
 * Such a model folder through any reader: what a web page does with `fetch`, where `loadCodiff` (Node) reads a
 * folder on disk. Strict as `loadCodiff`: a missing file or tensor is named and nothing stays allocated.
 */
export async function loadStandInModel(read: ModelFileReader): Promise<CodiffGenerator> {
  const file = async (path: string) => {
    try {
      return await read(path);
    } catch (e) {
      throw new PipelineError(`model file ${path}: ${(e as Error).message}`);
    }
  };
  const json = async (path: string) => {
    try {
      return JSON.parse(new TextDecoder().decode(await file(path))) as Record<string, unknown>;
    } catch (e) {
      throw e instanceof PipelineError ? e : new PipelineError(`model file ${path} is not JSON`);
    }
  };
  const safetensors = async (path: string): Promise<{ tensors: Map<string, HostTensor>; metadata: Readonly<Record<string, string>> }> => {
    const f = await SafetensorsFile.open(bytesSource(await file(path), path));
    return { tensors: await f.readAll(), metadata: f.metadata };
  };
  const vae = PixelUnshuffleAutoencoder.fromConfigJson(await json('vae/config.json'));
  const unetConfig = unetConfigFromDiffusers(await json('unet/config.json'));
  const [weights, checkpoint, caveDict] = [
    await safetensors('unet/diffusion_pytorch_model.safetensors'),
    await safetensors('codiff.safetensors'),
    await safetensors('cave.safetensors'),
  ];
  const loaded: { dispose(): void }[] = [];
  try {
    const unet = new UNet2DConditionModel(unetConfig);
    loaded.push(unet);
    unet.loadStateDict(weights.tensors);
    const cave: CaVE = caveFromStateDict(caveDict.tensors);
    loaded.push(cave);
    return CodiffGenerator.fromCheckpoint({ unet, vae, cave }, checkpointFromSafetensors(checkpoint.tensors, checkpoint.metadata, 'codiff.safetensors'));
  } catch (e) {
    for (const m of loaded) m.dispose();
    throw e;
  }
}
