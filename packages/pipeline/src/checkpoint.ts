import type { HostTensor, PlainValue } from '@codiff/nn';
import { hasAdapters, type AdapterModules } from './adapters.js';
import { PipelineError } from './errors.js';

/**
 * What a trained CODiff adds to SD 2.1 and CaVE, as the official `model.pkl` holds it: the adapters' module lists
 * and ranks, the UNet tensors (`state_dict_unet.*`: LoRA A/B under peft's in-memory names and the fully trained
 * `conv_in.base_layer.*`), the VAE-encoder LoRA (`state_dict_vae.*`) and `proj.*`.
 */
export interface CodiffCheckpoint {
  readonly modules: AdapterModules;
  readonly rankUnet: number;
  readonly rankVae: number;
  /** peft's lora_alpha, which the official file does not store (peft's default, 8, is what it was trained with). */
  readonly loraAlpha: number;
  /** The generator's input skip (GeneratorOptions.residual): codiff-lite's; never in an official file. */
  readonly residual?: boolean;
  readonly tensors: ReadonlyMap<string, HostTensor>;
}

/** peft's default lora_alpha: the official code never sets it (CLARIFICATIONS.md). */
export const DEFAULT_LORA_ALPHA = 8;

/** The plain entries of the official file, by key. */
const LIST_KEYS = {
  unetEncoder: 'unet_lora_encoder_modules',
  unetDecoder: 'unet_lora_decoder_modules',
  unetOthers: 'unet_lora_others_modules',
  vaeEncoder: 'vae_lora_encoder_modules',
} as const satisfies Record<keyof AdapterModules, string>;

/** The safetensors metadata entry that carries the lists and ranks of a converted checkpoint. */
export const CHECKPOINT_METADATA_KEY = 'codiff_checkpoint';

/**
 * A checkpoint from the contents of the official `model.pkl` (tensors and plain values as nn's torch reader
 * returns them). Missing or malformed entries are named.
 */
export function checkpointFromOfficial(
  tensors: ReadonlyMap<string, HostTensor>,
  values: ReadonlyMap<string, PlainValue>,
  name: string,
  loraAlpha = DEFAULT_LORA_ALPHA,
): CodiffCheckpoint {
  const list = (key: string): string[] => {
    const v = values.get(key);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw new PipelineError(`${name}: '${key}' ${v === undefined ? 'is missing' : 'is not a list of module names'} (not a CODiff model.pkl?)`);
    }
    return [...new Set(v as string[])];
  };
  const rank = (key: string): number => {
    const v = values.get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new PipelineError(`${name}: '${key}' must be a positive integer (got ${JSON.stringify(v)})`);
    return v;
  };
  const modules = Object.fromEntries(Object.entries(LIST_KEYS).map(([field, key]) => [field, list(key)])) as unknown as AdapterModules;
  return { modules, rankUnet: rank('rank_unet'), rankVae: rank('rank_vae'), loraAlpha, tensors: checkedTensors(tensors, name, hasAdapters(modules)) };
}

/** A checkpoint from a converted safetensors file: the same tensor names, lists and ranks in its metadata. */
export function checkpointFromSafetensors(tensors: ReadonlyMap<string, HostTensor>, metadata: Readonly<Record<string, string>>, name: string): CodiffCheckpoint {
  const json = metadata[CHECKPOINT_METADATA_KEY];
  if (!json) throw new PipelineError(`${name}: no '${CHECKPOINT_METADATA_KEY}' metadata (not a converted CODiff checkpoint)`);
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(json);
  } catch {
    throw new PipelineError(`${name}: its '${CHECKPOINT_METADATA_KEY}' metadata is not JSON`);
  }
  const values = new Map<string, PlainValue>(Object.entries(meta).filter(([k]) => k !== 'lora_alpha' && k !== 'residual') as [string, PlainValue][]);
  const alpha = meta.lora_alpha;
  if (typeof alpha !== 'number' || !(alpha > 0)) throw new PipelineError(`${name}: lora_alpha must be a positive number (got ${JSON.stringify(alpha)})`);
  if (meta.residual !== undefined && typeof meta.residual !== 'boolean') throw new PipelineError(`${name}: residual must be true or false (got ${JSON.stringify(meta.residual)})`);
  return { ...checkpointFromOfficial(tensors, values, name, alpha), ...(meta.residual === true ? { residual: true } : {}) };
}

/** The metadata a converted checkpoint carries (inverse of `checkpointFromSafetensors`). */
export function checkpointMetadata(c: CodiffCheckpoint): Record<string, string> {
  const lists = Object.fromEntries(Object.entries(LIST_KEYS).map(([field, key]) => [key, c.modules[field as keyof AdapterModules]]));
  const residual = c.residual ? { residual: true } : {};
  return { [CHECKPOINT_METADATA_KEY]: JSON.stringify({ ...lists, rank_unet: c.rankUnet, rank_vae: c.rankVae, lora_alpha: c.loraAlpha, ...residual }) };
}

const TENSOR_PREFIXES = ['state_dict_unet.', 'state_dict_vae.', 'proj.'];

/** Without adapters (a fully trained UNet, codiff-lite) conv_in lives in the UNet's own folder, not here. */
function checkedTensors(tensors: ReadonlyMap<string, HostTensor>, name: string, adapters: boolean): ReadonlyMap<string, HostTensor> {
  const stray = [...tensors.keys()].filter((k) => !TENSOR_PREFIXES.some((p) => k.startsWith(p)));
  if (stray.length) throw new PipelineError(`${name}: unexpected tensors ${stray.slice(0, 3).join(', ')} (a CODiff checkpoint holds state_dict_unet, state_dict_vae and proj)`);
  for (const key of ['proj.weight', 'proj.bias', ...(adapters ? ['state_dict_unet.conv_in.base_layer.weight'] : [])]) {
    if (!tensors.has(key)) throw new PipelineError(`${name}: missing ${key} (not a CODiff model.pkl?)`);
  }
  return tensors;
}
