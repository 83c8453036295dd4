// Node-only: CODiff checkpoints and models from files.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors, type CheckpointLimits } from '@codiff/nn';
import { diskFolder, fileSource } from '@codiff/nn/node';
import { loadCave, saveCave } from '@codiff/cave/node';
import { unetConfigToDiffusers, type AutoencoderKL } from '@codiff/sd-unet';
import { loadUNet } from '@codiff/sd-unet/node';
import { writeFileAtomic } from '@codiff/image-io/node';
import { checkpointMetadata, type CodiffCheckpoint } from './checkpoint.js';
import { PipelineError } from './errors.js';
import type { CodiffGenerator } from './generator.js';
import { assembleGenerator, loadLatentAutoencoderFrom, loadModelFolder, readCodiffCheckpointFrom, type ModelFolderOptions } from './model-files.js';
import { PixelUnshuffleAutoencoder } from './pixel-unshuffle.js';

/**
 * A CODiff checkpoint from the official `model.pkl` (a `torch.save` dict, read without running pickle code) or
 * from its safetensors conversion (`saveCodiffCheckpoint`, `codiff convert-weights`).
 */
export async function readCodiffCheckpoint(path: string, limits?: CheckpointLimits): Promise<CodiffCheckpoint> {
  return readCodiffCheckpointFrom(await fileSource(path), limits);
}

/** Write a checkpoint as safetensors (same tensor names; lists and ranks in the metadata), atomically. */
export async function saveCodiffCheckpoint(checkpoint: CodiffCheckpoint, path: string, dtype: 'F32' | 'F16' = 'F32'): Promise<void> {
  const tensors = Object.fromEntries([...checkpoint.tensors].map(([k, t]) => [k, { ...t, dtype }]));
  await writeFileAtomic(path, writeSafetensors(tensors, checkpointMetadata(checkpoint)));
}

export interface CodiffFiles {
  /** A Stable Diffusion 2.1-base diffusers folder (with `unet/` and `vae/`), local or from downloadDiffusersModel. */
  readonly sd: string;
  /** The trained generator: official `model.pkl` or its safetensors conversion. */
  readonly checkpoint: string;
  /** CaVE weights: official `cave.pth` or safetensors. */
  readonly cave: string;
  /** Keep the UNet's weights in host memory (SD 2.1 on wasm, whose heap cannot hold them). */
  readonly host?: boolean;
  readonly variant?: string;
}

/** The full CODiff generator from its files; everything loaded is freed again if a later file fails. */
export function loadCodiff(files: CodiffFiles): Promise<CodiffGenerator> {
  return assembleGenerator({
    checkpoint: () => readCodiffCheckpoint(files.checkpoint),
    cave: () => loadCave(files.cave),
    unet: () => loadUNet(join(files.sd, 'unet'), { host: files.host, variant: files.variant }),
    vae: () => loadLatentAutoencoder(join(files.sd, 'vae'), files.variant),
  });
}

/** A model folder's `vae/` on disk: SD's AutoencoderKL (diffusers), or the pixel-unshuffle stand-in. */
export function loadLatentAutoencoder(dir: string, variant?: string): Promise<AutoencoderKL | PixelUnshuffleAutoencoder> {
  return loadLatentAutoencoderFrom(diskFolder(dir), variant);
}

/**
 * Write a generator whose UNet was trained in full (codiff-lite) as a model folder `loadCodiffFolder` reads:
 * `unet/` (diffusers layout), `vae/config.json` (the stand-in), `codiff.safetensors` (proj) and `cave.safetensors`.
 * F16 halves the files (the shipped model); training checkpoints keep F32.
 */
export async function saveCodiffModel(g: CodiffGenerator, dir: string, dtype: 'F32' | 'F16' = 'F32'): Promise<void> {
  if (g.training !== 'full' || !(g.vae instanceof PixelUnshuffleAutoencoder)) {
    throw new PipelineError('only a fully trained UNet on the pixel-unshuffle stand-in is saved as a folder; an SD-based CODiff is its checkpoint (saveCodiffCheckpoint) beside SD 2.1');
  }
  await mkdir(join(dir, 'unet'), { recursive: true });
  await mkdir(join(dir, 'vae'), { recursive: true });
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n');
  const unet = await g.unet.stateDict();
  await writeFileAtomic(join(dir, 'unet', 'diffusion_pytorch_model.safetensors'), writeSafetensors(Object.fromEntries([...unet].map(([k, t]) => [k, { ...t, dtype }]))));
  await writeFileAtomic(join(dir, 'unet', 'config.json'), json(unetConfigToDiffusers(g.unet.config)));
  await writeFileAtomic(join(dir, 'vae', 'config.json'), json(g.vae.toConfigJson()));
  await saveCodiffCheckpoint(await g.toCheckpoint(), join(dir, 'codiff.safetensors'), dtype);
  await saveCave(g.cave, join(dir, 'cave.safetensors'), {}, dtype);
}

/**
 * The generator of a model folder on disk: SD 2.1-base's `unet/` and `vae/` (diffusers) — or codiff-lite's trained
 * `unet/` and stand-in `vae/config.json` —, the generator checkpoint (`codiff.safetensors`, `codiff.pkl` or
 * `model.pkl`) and CaVE (`cave.safetensors` or `cave.pth`). What is missing is named.
 */
export function loadCodiffFolder(dir: string, options: ModelFolderOptions = {}): Promise<CodiffGenerator> {
  return loadModelFolder(diskFolder(dir), options);
}
