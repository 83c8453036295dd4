// A CODiff model folder from any ModelFolder (disk in Node, fetch or a user's picked folder in a browser): SD 2.1's
// diffusers `unet/` and `vae/` with the generator checkpoint and CaVE, or codiff-lite's trained `unet/` and stand-in
// `vae/config.json` with the same two files.
import { caveFromCheckpoint, type CaVE } from '@codiff/cave';
import { readCheckpointSource, readFolderJson, subfolder, type ByteSource, type CheckpointLimits, type ModelFolder } from '@codiff/nn';
import { loadUNetFrom, loadVaeFrom, type AutoencoderKL, type UNet2DConditionModel } from '@codiff/sd-unet';
import { checkpointFromOfficial, checkpointFromSafetensors, type CodiffCheckpoint } from './checkpoint.js';
import { PipelineError } from './errors.js';
import { CodiffGenerator } from './generator.js';
import { PIXEL_UNSHUFFLE_CLASS, PixelUnshuffleAutoencoder } from './pixel-unshuffle.js';
import { POST_FILTER_FILE, readLumaPostFilter, type LumaPostFilter } from './postfilter.js';

/** The generator checkpoint's names in a model folder, in order of preference. */
export const CHECKPOINT_NAMES = ['codiff.safetensors', 'codiff.pkl', 'model.pkl'] as const;
/** CaVE's weights' names in a model folder, in order of preference. */
export const CAVE_NAMES = ['cave.safetensors', 'cave.pth'] as const;

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

/** Files a model folder may also hold: codiff-lite's luma post-filter (`restoreImage`'s `postFilter` runs it). */
export const OPTIONAL_MODEL_FILES = [POST_FILTER_FILE] as const;

/**
 * Which checkpoint and CaVE files a model folder holds (the first of CHECKPOINT_NAMES and CAVE_NAMES present);
 * what is missing is named, `unet/config.json` and `vae/config.json` included.
 */
export async function findModelFiles(folder: ModelFolder): Promise<{ checkpoint: string; cave: string }> {
  const first = async (names: readonly string[]) => {
    for (const n of names) if (await folder.has(n)) return n;
    return undefined;
  };
  const [checkpoint, cave] = [await first(CHECKPOINT_NAMES), await first(CAVE_NAMES)];
  const missing = [
    ...((await folder.has('unet/config.json')) ? [] : ['unet/config.json']),
    ...((await folder.has('vae/config.json')) ? [] : ['vae/config.json']),
    ...(checkpoint ? [] : [CHECKPOINT_NAMES.join(' or ')]),
    ...(cave ? [] : [CAVE_NAMES.join(' or ')]),
  ];
  if (missing.length) throw new PipelineError(`${folder.where('')} is not a CODiff model folder: missing ${missing.join('; ')}`);
  return { checkpoint: checkpoint!, cave: cave! };
}

/**
 * A CODiff checkpoint from the official `model.pkl` (a `torch.save` dict, read without running pickle code) or
 * from its safetensors conversion; the source is closed.
 */
export async function readCodiffCheckpointFrom(source: ByteSource, limits?: CheckpointLimits): Promise<CodiffCheckpoint> {
  const contents = await readCheckpointSource(source, limits);
  return contents.format === 'safetensors'
    ? checkpointFromSafetensors(contents.tensors, contents.metadata, source.name)
    : checkpointFromOfficial(contents.tensors, contents.values, source.name);
}

/** CaVE from the official `cave.pth` or safetensors (its QF head's training patch from the metadata); the source is closed. */
export async function readCaveFrom(source: ByteSource, limits?: CheckpointLimits): Promise<CaVE> {
  return caveFromCheckpoint(await readCheckpointSource(source, limits));
}

/** A model folder's `vae/`: SD's AutoencoderKL (diffusers), or the pixel-unshuffle stand-in (its config.json alone). */
export async function loadLatentAutoencoderFrom(vae: ModelFolder, variant?: string): Promise<AutoencoderKL | PixelUnshuffleAutoencoder> {
  return latentAutoencoder(vae, await readFolderJson(vae, 'config.json'), variant);
}

const isStandIn = (vaeConfig: Record<string, unknown>) => vaeConfig._class_name === PIXEL_UNSHUFFLE_CLASS;

function latentAutoencoder(vae: ModelFolder, config: Record<string, unknown>, variant?: string): Promise<AutoencoderKL | PixelUnshuffleAutoencoder> {
  return isStandIn(config) ? Promise.resolve(PixelUnshuffleAutoencoder.fromConfigJson(config)) : loadVaeFrom(vae, { variant });
}

/** The generator's parts, each loaded in turn; what was loaded is freed again if a later part fails. */
export async function assembleGenerator(parts: {
  checkpoint: () => Promise<CodiffCheckpoint>;
  cave: () => Promise<CaVE>;
  unet: () => Promise<UNet2DConditionModel>;
  vae: () => Promise<AutoencoderKL | PixelUnshuffleAutoencoder>;
  postFilter?: () => Promise<LumaPostFilter | undefined>;
}): Promise<CodiffGenerator> {
  const checkpoint = await parts.checkpoint();
  // Plain numbers, nothing to free: read before the networks.
  const postFilter = await parts.postFilter?.();
  const loaded: { dispose(): void }[] = [];
  const keep = <M extends { dispose(): void }>(m: M) => (loaded.push(m), m);
  try {
    const cave = keep(await parts.cave());
    const unet = keep(await parts.unet());
    const vae = keep(await parts.vae());
    return CodiffGenerator.fromCheckpoint({ unet, vae, cave, postFilter }, checkpoint);
  } catch (e) {
    for (const m of loaded) m.dispose();
    throw e;
  }
}

export interface ModelFolderOptions {
  /**
   * Keep the UNet's weights in host memory, uploaded per layer: needed for SD 2.1 on wasm, whose heap cannot hold
   * them. 'sd' does so only when the folder holds SD 2.1 (not codiff-lite's small UNet). Default false.
   */
  readonly host?: boolean | 'sd';
  /** diffusers weight variant of `unet/` and `vae/`, e.g. 'fp16'. */
  readonly variant?: string;
  readonly limits?: CheckpointLimits;
}

/**
 * The generator of a model folder, read through `folder`, with its luma post-filter where the folder has one: what a web page does with fetch or a picked folder, and
 * what `loadCodiff` does on disk. Strict: a missing file or tensor is named and nothing stays allocated.
 */
export async function loadModelFolder(folder: ModelFolder, options: ModelFolderOptions = {}): Promise<CodiffGenerator> {
  const files = await findModelFiles(folder);
  const open = async (path: string) => (await folder.open(path))!;
  const vae = subfolder(folder, 'vae');
  const vaeConfig = await readFolderJson(vae, 'config.json');
  const host = options.host === 'sd' ? !isStandIn(vaeConfig) : options.host;
  return assembleGenerator({
    checkpoint: async () => readCodiffCheckpointFrom(await open(files.checkpoint), options.limits),
    cave: async () => readCaveFrom(await open(files.cave), options.limits),
    unet: () => loadUNetFrom(subfolder(folder, 'unet'), { host, variant: options.variant }),
    vae: () => latentAutoencoder(vae, vaeConfig, options.variant),
    postFilter: async () => ((await folder.has(POST_FILTER_FILE)) ? readLumaPostFilter(await open(POST_FILTER_FILE)) : undefined),
  });
}
