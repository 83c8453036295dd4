import type { Module } from '@codiff/nn';

/** The adapters CODiff trains, by name as in the official checkpoints. */
export const UNET_ADAPTERS = ['default_encoder', 'default_decoder', 'default_others'] as const;
export const VAE_ADAPTER = 'default_encoder';

/** The module paths each adapter covers: what the official `model.pkl` stores beside the weights. */
export interface AdapterModules {
  readonly unetEncoder: readonly string[];
  readonly unetDecoder: readonly string[];
  readonly unetOthers: readonly string[];
  readonly vaeEncoder: readonly string[];
}

/** No adapters at all: a generator whose UNet is trained in full (codiff-lite). */
export const NO_ADAPTERS: AdapterModules = { unetEncoder: [], unetDecoder: [], unetOthers: [], vaeEncoder: [] };

/** Whether any adapter covers a module (false for a fully trained UNet's checkpoint). */
export const hasAdapters = (m: AdapterModules): boolean => Object.values(m).some((list: readonly string[]) => list.length > 0);

// The official `initialize_unet` / `initialize_vae` patterns, matched as substrings of parameter names.
const UNET_PATTERNS = ['to_k', 'to_q', 'to_v', 'to_out.0', 'conv', 'conv1', 'conv2', 'conv_shortcut', 'conv_out', 'proj_in', 'proj_out', 'ff.net.2', 'ff.net.0.proj'];
const VAE_PATTERNS = ['conv1', 'conv2', 'conv_in', 'conv_shortcut', 'conv', 'conv_out', 'to_k', 'to_q', 'to_v', 'to_out.0'];

/** Weight parameters the official loops look at (they skip biases and normalisation layers). */
function weightModules(model: Module): string[] {
  return [...model.namedParameters()]
    .map(([name]) => name)
    .filter((n) => n.endsWith('.weight') && !n.includes('bias') && !n.includes('norm'))
    .map((n) => n.slice(0, -'.weight'.length));
}

/**
 * The LoRA module lists of a fresh CODiff, as the official code computes them: UNet layers matching a pattern go
 * to `default_encoder` (down blocks and conv_in), `default_decoder` (up blocks and conv_out) or `default_others`
 * (the mid block); the VAE adapter covers every matching encoder layer and `quant_conv`. Each path appears once
 * (the official VAE list repeats names; peft takes them as a set).
 */
export function officialAdapterModules(unet: Module, vae: Module): AdapterModules {
  const unetModules = weightModules(unet).filter((n) => UNET_PATTERNS.some((p) => n.includes(p)));
  const isEncoder = (n: string) => n.includes('down_blocks') || n.includes('conv_in');
  const isDecoder = (n: string) => n.includes('up_blocks') || n.includes('conv_out');
  return {
    unetEncoder: unetModules.filter(isEncoder),
    unetDecoder: unetModules.filter((n) => !isEncoder(n) && isDecoder(n)),
    unetOthers: unetModules.filter((n) => !isEncoder(n) && !isDecoder(n)),
    vaeEncoder: weightModules(vae).filter(
      (n) => (n.includes('encoder') && VAE_PATTERNS.some((p) => n.includes(p))) || (n.includes('quant_conv') && !n.includes('post_quant_conv')),
    ),
  };
}
