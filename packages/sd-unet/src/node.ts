// Node-only: load diffusers model folders from disk and download them from the Hugging Face Hub.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NnError, parseShardIndex, withParameterPlacement, type Module } from '@codiff/nn';
import { loadModuleWeights } from '@codiff/nn/node';
import { UNet2DConditionModel, unetConfigFromDiffusers } from './unet.js';
import { AutoencoderKL, vaeConfigFromDiffusers } from './vae.js';

export interface LoadOptions {
  /** diffusers weight variant, e.g. 'fp16' for `diffusion_pytorch_model.fp16.safetensors`. */
  variant?: string;
  /**
   * Keep the weights in host memory and upload them per layer (see @codiff/nn's Placement): needed for SD 2.1's
   * UNet on the wasm backend, whose 4 GiB heap cannot hold it. The weights are then frozen.
   */
  host?: boolean;
}

export interface UNetLoadOptions extends LoadOptions {
  /** Only conv_in, the time embedding, the down and mid blocks (see UNet2DConditionModel's encoderOnly). */
  encoderOnly?: boolean;
}

/** diffusers' `_add_variant`: the variant goes before the last extension. */
function withVariant(file: string, variant?: string): string {
  if (!variant) return file;
  const parts = file.split('.');
  return [...parts.slice(0, -1), variant, parts[parts.length - 1]].join('.');
}

/** The weights' base name (without `.safetensors`) in a diffusers folder. */
const weightsName = (variant?: string) => withVariant('diffusion_pytorch_model.safetensors', variant).replace(/\.safetensors$/, '');

async function readConfig(dir: string): Promise<Record<string, unknown>> {
  const path = join(dir, 'config.json');
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NnError(err.code === 'ENOENT' ? `${path}: no such file (expected a diffusers model folder)` : `${path}: ${err.message}`);
  }
}

/** Build the model `className` from `dir/config.json` and stream its weights in; disposed again on failure. */
async function loadDiffusersModel<M extends Module>(
  dir: string,
  className: string,
  build: (config: Record<string, unknown>) => M,
  options: LoadOptions,
  keys: { rename?: (key: string) => string; skip?: (key: string) => boolean } = {},
): Promise<M> {
  const config = await readConfig(dir);
  if (config._class_name !== undefined && config._class_name !== className) {
    throw new NnError(`${dir} holds a ${String(config._class_name)}, not a ${className}`);
  }
  const model = withParameterPlacement(options.host ? 'host' : 'device', () => build(config));
  try {
    await loadModuleWeights(model, dir, weightsName(options.variant), keys);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** Load a diffusers UNet2DConditionModel folder, e.g. `stable-diffusion-2-1-base/unet`. */
export function loadUNet(dir: string, options: UNetLoadOptions = {}): Promise<UNet2DConditionModel> {
  const encoderOnly = options.encoderOnly === true;
  return loadDiffusersModel(dir, 'UNet2DConditionModel', (c) => new UNet2DConditionModel(unetConfigFromDiffusers(c), { encoderOnly }), options, {
    skip: encoderOnly ? (k) => k.startsWith('up_blocks.') || k.startsWith('conv_out.') : undefined,
  });
}

/** Old diffusers VAE checkpoints name the mid-block attention query/key/value/proj_attn; diffusers renames on load. */
export function renameLegacyVaeKey(key: string): string {
  return key
    .replace(/(attentions\.\d+)\.query\./, '$1.to_q.')
    .replace(/(attentions\.\d+)\.key\./, '$1.to_k.')
    .replace(/(attentions\.\d+)\.value\./, '$1.to_v.')
    .replace(/(attentions\.\d+)\.proj_attn\./, '$1.to_out.0.');
}

/** Load a diffusers AutoencoderKL folder, e.g. `stable-diffusion-2-1-base/vae`. */
export function loadVae(dir: string, options: LoadOptions = {}): Promise<AutoencoderKL> {
  return loadDiffusersModel(dir, 'AutoencoderKL', (c) => new AutoencoderKL(vaeConfigFromDiffusers(c)), options, { rename: renameLegacyVaeKey });
}

export interface DownloadOptions extends LoadOptions {
  /** Hub repository, e.g. 'stabilityai/stable-diffusion-2-1-base'. */
  repo: string;
  /** Model folders to fetch (default unet and vae). */
  subfolders?: string[];
  revision?: string;
  /** Cache directory (default: @huggingface/hub's, i.e. HF_HUB_CACHE or ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Hub endpoint (default https://huggingface.co; tests point it at a local server). */
  hubUrl?: string;
  accessToken?: string;
  /** Called before each file is fetched (or found in the cache). */
  onFile?: (path: string) => void;
}

/**
 * Download a diffusers model's config and safetensors weights (single or sharded) into the Hub cache and return
 * the local snapshot folder, whose subfolders `loadUNet` and `loadVae` read. Files already cached are reused.
 */
export async function downloadDiffusersModel(options: DownloadOptions): Promise<string> {
  const { downloadFileToCacheDir } = await import('@huggingface/hub');
  const fetchFile = async (path: string) => {
    options.onFile?.(path);
    return downloadFileToCacheDir({
      repo: options.repo,
      path,
      revision: options.revision,
      cacheDir: options.cacheDir,
      hubUrl: options.hubUrl,
      accessToken: options.accessToken,
    });
  };
  let root: string | undefined;
  for (const folder of options.subfolders ?? ['unet', 'vae']) {
    const configPath = await fetchFile(`${folder}/config.json`);
    root ??= dirname(dirname(configPath));
    const base = weightsName(options.variant);
    const indexPath = `${folder}/${base}.safetensors.index.json`;
    let index: string | undefined;
    try {
      index = await readFile(await fetchFile(indexPath), 'utf8');
    } catch {
      await fetchFile(`${folder}/${base}.safetensors`);
    }
    if (index) {
      for (const shard of new Set(parseShardIndex(index, indexPath).values())) await fetchFile(`${folder}/${shard}`);
    }
  }
  if (!root) throw new NnError('no model folders requested');
  return root;
}
