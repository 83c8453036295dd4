import { NnError, writeSafetensors, type HostTensor } from '@codiff/nn';
import { adapterConfigJson, inferConfig, parseLoraTensors } from './formats.js';
import { matchesTarget, type LoraConfig, type LoraModel } from './lora.js';

/**
 * Add adapter `name` from a LoRA state dict in peft, diffusers or kohya naming. `config` (peft's
 * adapter_config.json) gives alpha; without one, a kohya `.alpha` or alpha = r (diffusers' assumption) is used.
 * Returns the configuration used.
 */
export function loadLoraAdapter(model: LoraModel, name: string, dict: ReadonlyMap<string, HostTensor>, config?: LoraConfig): LoraConfig {
  const layerPaths = [...model.adaptableLayers()].map(([p]) => p);
  const tensors = parseLoraTensors(dict, layerPaths);
  const used = config ?? inferConfig(tensors);
  const modules = [...tensors.a.keys()];
  if (modules.length === 0) throw new NnError('LoRA state dict has no lora_A/lora_B tensors');
  if (config) {
    const targeted = new Set(layerPaths.filter((p) => matchesTarget(p, config.targetModules)));
    const extra = modules.filter((m) => !targeted.has(m));
    if (extra.length) throw new NnError(`LoRA tensors for ${extra[0]} are outside target_modules ${config.targetModules.join(', ')}`);
  }
  model.attach(name, used, modules);
  const memory = new Map<string, HostTensor>();
  for (const m of modules) {
    memory.set(`${m}.lora_A.${name}.weight`, tensors.a.get(m)!);
    memory.set(`${m}.lora_B.${name}.weight`, tensors.b.get(m)!);
  }
  model.loadAdapterWeights(name, memory);
  return used;
}

/** peft `save_pretrained` files for one adapter: adapter_model.safetensors and adapter_config.json. */
export async function savePeftAdapter(model: LoraModel, name: string): Promise<{ 'adapter_model.safetensors': Uint8Array; 'adapter_config.json': string }> {
  const config = model.configs.get(name);
  if (!config) throw new NnError(`no LoRA adapter '${name}'`);
  const tensors: Record<string, { shape: readonly number[]; data: Float32Array }> = {};
  for (const [key, p] of model.adapterParameters(name)) {
    tensors[`base_model.model.${key.replace(`.${name}.weight`, '.weight')}`] = await p.toHost();
  }
  return {
    'adapter_model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
    'adapter_config.json': adapterConfigJson(config),
  };
}
