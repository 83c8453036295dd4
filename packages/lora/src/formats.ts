import { NnError, type HostTensor } from '@codiff/nn';
import type { LoraConfig } from './lora.js';

/**
 * LoRA tensors keyed by module path, whatever file naming they came in:
 * - peft `save_pretrained`: `base_model.model.<module>.lora_A.weight`
 * - peft in memory: `<module>.lora_A.<adapter>.weight`
 * - diffusers 0.27 `save_lora_weights`: `unet.<module>.lora.down.weight` (to_q/k/v/out) or `unet.<module>.lora_A.weight`
 * - kohya: `lora_unet_<module with _>.lora_down.weight` and `.alpha`
 */
export interface LoraTensors {
  readonly a: Map<string, HostTensor>;
  readonly b: Map<string, HostTensor>;
  /** Per-module alpha where the file stores one (kohya). */
  readonly alpha: Map<string, number>;
  readonly format: 'peft' | 'peft-memory' | 'diffusers' | 'kohya';
}

const PATTERNS: { format: LoraTensors['format']; re: RegExp; ab: (m: string) => 'a' | 'b' }[] = [
  { format: 'peft', re: /^base_model\.model\.(.+)\.lora_([AB])\.weight$/, ab: (m) => (m === 'A' ? 'a' : 'b') },
  { format: 'diffusers', re: /^unet\.(.+)\.lora\.(down|up)\.weight$/, ab: (m) => (m === 'down' ? 'a' : 'b') },
  { format: 'diffusers', re: /^unet\.(.+)\.lora_([AB])\.weight$/, ab: (m) => (m === 'A' ? 'a' : 'b') },
  { format: 'kohya', re: /^lora_unet_(.+)\.lora_(down|up)\.weight$/, ab: (m) => (m === 'down' ? 'a' : 'b') },
  { format: 'peft-memory', re: /^(.+)\.lora_([AB])\.[^.]+\.weight$/, ab: (m) => (m === 'A' ? 'a' : 'b') },
];

/**
 * Sort a LoRA state dict into A/B tensors per module path. `modulePaths` (the model's Linear/Conv2d paths)
 * resolves kohya's underscore-joined names, which are ambiguous on their own.
 */
export function parseLoraTensors(dict: ReadonlyMap<string, HostTensor>, modulePaths: Iterable<string>): LoraTensors {
  const kohyaNames = new Map<string, string>();
  for (const p of modulePaths) kohyaNames.set(p.replace(/\./g, '_'), p);
  const out: LoraTensors = { a: new Map(), b: new Map(), alpha: new Map(), format: 'peft' };
  let format: LoraTensors['format'] | undefined;
  for (const [key, t] of dict) {
    const alpha = /^lora_unet_(.+)\.alpha$/.exec(key);
    if (alpha) {
      out.alpha.set(kohyaPath(alpha[1], kohyaNames, key), t.data[0]);
      continue;
    }
    const hit = PATTERNS.map((p) => ({ p, m: p.re.exec(key) })).find((x) => x.m);
    if (!hit) throw new NnError(`'${key}' is not a LoRA tensor name in peft, diffusers or kohya form`);
    if (format && format !== hit.p.format) throw new NnError(`LoRA file mixes ${format} and ${hit.p.format} key names`);
    format = hit.p.format;
    const module = hit.p.format === 'kohya' ? kohyaPath(hit.m![1], kohyaNames, key) : hit.m![1];
    out[hit.p.ab(hit.m![2])].set(module, t);
  }
  for (const m of out.a.keys()) if (!out.b.has(m)) throw new NnError(`LoRA module ${m} has lora_A but no lora_B`);
  for (const m of out.b.keys()) if (!out.a.has(m)) throw new NnError(`LoRA module ${m} has lora_B but no lora_A`);
  return { ...out, format: format ?? 'peft' };
}

function kohyaPath(name: string, names: Map<string, string>, key: string): string {
  const path = names.get(name);
  if (!path) throw new NnError(`kohya LoRA key '${key}' names no module of this model`);
  return path;
}

/** Rank and target names implied by the tensors (for files that carry no config). */
export function inferConfig(t: LoraTensors, alpha?: number): LoraConfig {
  const ranks = new Set([...t.a.values()].map((x) => x.shape[0]));
  if (ranks.size !== 1) throw new NnError(`LoRA tensors have ranks ${[...ranks].join(', ')}; one rank per adapter is supported`);
  const r = [...ranks][0];
  const alphas = new Set(t.alpha.values());
  if (alphas.size > 1) throw new NnError('LoRA file has several alpha values; one per adapter is supported');
  // diffusers 0.27 and its kohya export store no lora_alpha: they assume alpha = r (README of the golden set).
  return { r, alpha: alpha ?? [...alphas][0] ?? r, targetModules: [...t.a.keys()] };
}

/** peft's adapter_config.json → LoraConfig. */
export function parseAdapterConfig(json: string): LoraConfig {
  const c = JSON.parse(json) as Record<string, unknown>;
  if (c.peft_type !== undefined && c.peft_type !== 'LORA') throw new NnError(`adapter type ${String(c.peft_type)} is not LoRA`);
  for (const [k, ok] of [['use_dora', false], ['use_rslora', false], ['bias', 'none']] as const) {
    if (c[k] !== undefined && c[k] !== ok) throw new NnError(`adapter_config ${k}=${JSON.stringify(c[k])} is not supported`);
  }
  const patterns = [c.rank_pattern, c.alpha_pattern].filter((p) => p && Object.keys(p as object).length > 0);
  if (patterns.length) throw new NnError('adapter_config rank_pattern/alpha_pattern are not supported');
  if (typeof c.r !== 'number' || typeof c.lora_alpha !== 'number' || !Array.isArray(c.target_modules)) {
    throw new NnError('adapter_config.json needs r, lora_alpha and target_modules');
  }
  return { r: c.r, alpha: c.lora_alpha, targetModules: c.target_modules as string[] };
}

/** LoraConfig → peft's adapter_config.json (the fields peft reads). */
export function adapterConfigJson(config: LoraConfig): string {
  return JSON.stringify(
    {
      peft_type: 'LORA',
      r: config.r,
      lora_alpha: config.alpha,
      target_modules: [...config.targetModules].sort(),
      lora_dropout: 0,
      bias: 'none',
      fan_in_fan_out: false,
      use_rslora: false,
      use_dora: false,
      init_lora_weights: true,
      rank_pattern: {},
      alpha_pattern: {},
      inference_mode: true,
    },
    null,
    2,
  );
}
