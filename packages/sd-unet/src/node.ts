// Node-only: load diffusers model folders from disk and download them from the Hugging Face Hub.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { NnError, parseShardIndex } from '@codiff/nn';
import { diskFolder } from '@codiff/nn/node';
import { loadUNetFrom, loadVaeFrom, weightsName, type LoadOptions, type UNetLoadOptions } from './load.js';
import type { UNet2DConditionModel } from './unet.js';
import type { AutoencoderKL } from './vae.js';

/** Load a diffusers UNet2DConditionModel folder on disk, e.g. `stable-diffusion-2-1-base/unet`. */
export function loadUNet(dir: string, options: UNetLoadOptions = {}): Promise<UNet2DConditionModel> {
  return loadUNetFrom(diskFolder(dir), options);
}

/** Load a diffusers AutoencoderKL folder on disk, e.g. `stable-diffusion-2-1-base/vae`. */
export function loadVae(dir: string, options: LoadOptions = {}): Promise<AutoencoderKL> {
  return loadVaeFrom(diskFolder(dir), options);
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
