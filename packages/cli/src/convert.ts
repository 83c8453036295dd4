import type { CheckpointLimits } from '@codiff/nn';
import { CliError, writeOutput } from './io.js';

export interface ConvertArgs {
  input: string;
  output: string;
  /** Keep only keys starting with one of these prefixes (e.g. `features.` of a torchvision VGG). */
  only: string[];
  dtype: 'F32' | 'F16' | 'BF16';
  /** Raise the checkpoint reader's limits for a file you trust. */
  limits?: CheckpointLimits;
}

export interface ConvertResult {
  tensors: number;
  skipped: number;
  bytes: number;
  /** Tensors per stored dtype: one asked for as F16 whose values exceed F16's range stays F32. */
  stored: Record<string, number>;
}

/**
 * A PyTorch checkpoint (.pth/.pt/.bin, read without executing its pickle code) or a safetensors file → safetensors
 * in the chosen dtype (e.g. F16 to halve a model). The official CODiff `model.pkl`/`codiff.pkl` keeps its adapter
 * module lists and ranks, as metadata @codiff/pipeline reads back.
 */
export async function convertWeightsCommand(args: ConvertArgs): Promise<ConvertResult> {
  if (!args.output.endsWith('.safetensors')) throw new CliError(`${args.output}: the output must be a .safetensors file`);
  const [nn, { readCheckpointFile }] = await Promise.all([import('@codiff/nn'), import('@codiff/nn/node')]);
  const { tensors, values, metadata: saved } = await readCheckpointFile(args.input, args.limits);
  // A safetensors input keeps its metadata: a CaVE's configuration, a CODiff checkpoint's module lists and ranks.
  let metadata: Record<string, string> = { ...saved, converted_from: args.input.split('/').pop() ?? args.input };
  if (values.has('unet_lora_encoder_modules')) {
    if (args.only.length) throw new CliError(`${args.input} is a CODiff checkpoint: convert it whole (without --only)`);
    const pipeline = await import('@codiff/pipeline');
    metadata = { ...metadata, ...pipeline.checkpointMetadata(pipeline.checkpointFromOfficial(tensors, values, args.input)) };
  }
  const kept = [...tensors].filter(([key]) => args.only.length === 0 || args.only.some((p) => key.startsWith(p)));
  if (kept.length === 0) throw new CliError(`${args.input}: no tensor key starts with ${args.only.join(' or ')}`);
  const out = nn.writeSafetensors(
    Object.fromEntries(kept.map(([key, t]) => [key, { ...t, dtype: args.dtype }])),
    metadata,
  );
  const stored: Record<string, number> = {};
  for (const { dtype } of (await nn.SafetensorsFile.open(nn.bytesSource(out))).tensors.values()) stored[dtype] = (stored[dtype] ?? 0) + 1;
  await writeOutput(args.output, out, [args.input]);
  return { tensors: kept.length, skipped: tensors.size - kept.length, bytes: out.length, stored };
}
