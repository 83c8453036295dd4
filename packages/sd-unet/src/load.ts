// diffusers model folders (`unet/`, `vae/`) from any ModelFolder: disk in Node, fetch or picked files in a browser.
import { loadModuleWeightsFrom, NnError, readFolderJson, withParameterPlacement, type ModelFolder, type Module } from '@codiff/nn';
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
export const weightsName = (variant?: string) => withVariant('diffusion_pytorch_model.safetensors', variant).replace(/\.safetensors$/, '');

/** Build the model `className` from the folder's config.json and stream its weights in; disposed again on failure. */
async function loadDiffusersModel<M extends Module>(
  folder: ModelFolder,
  className: string,
  build: (config: Record<string, unknown>) => M,
  options: LoadOptions,
  keys: { rename?: (key: string) => string; skip?: (key: string) => boolean } = {},
): Promise<M> {
  if (!(await folder.has('config.json'))) throw new NnError(`${folder.where('config.json')}: no such file (expected a diffusers model folder)`);
  const config = await readFolderJson(folder, 'config.json');
  if (config._class_name !== undefined && config._class_name !== className) {
    throw new NnError(`${folder.where('')} holds a ${String(config._class_name)}, not a ${className}`);
  }
  const model = withParameterPlacement(options.host ? 'host' : 'device', () => build(config));
  try {
    await loadModuleWeightsFrom(model, folder, weightsName(options.variant), keys);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}

/** A diffusers UNet2DConditionModel folder, e.g. `stable-diffusion-2-1-base/unet`. */
export function loadUNetFrom(folder: ModelFolder, options: UNetLoadOptions = {}): Promise<UNet2DConditionModel> {
  const encoderOnly = options.encoderOnly === true;
  return loadDiffusersModel(folder, 'UNet2DConditionModel', (c) => new UNet2DConditionModel(unetConfigFromDiffusers(c), { encoderOnly }), options, {
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

/** A diffusers AutoencoderKL folder, e.g. `stable-diffusion-2-1-base/vae`. */
export function loadVaeFrom(folder: ModelFolder, options: LoadOptions = {}): Promise<AutoencoderKL> {
  return loadDiffusersModel(folder, 'AutoencoderKL', (c) => new AutoencoderKL(vaeConfigFromDiffusers(c)), options, { rename: renameLegacyVaeKey });
}
