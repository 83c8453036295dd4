// Node-only: loading and saving CaVE checkpoints from files.
import { writeSafetensors, type CheckpointLimits, type HostTensor } from '@codiff/nn';
import { readStateDictFile } from '@codiff/nn/node';
import { writeFileAtomic } from '@codiff/image-io/node';
import { CaVE, caveConfigOf, type CaveConfig } from './cave.js';

/**
 * A CaVE from a checkpoint file: the official `cave.pth`/`G.pth` (zip or legacy `torch.save`, read without running
 * pickle code) or a safetensors file, BatchNorm statistics included. The configuration is read from the shapes
 * unless given; loading is strict (missing, unexpected or mis-shaped keys are named). The model is in eval mode.
 */
export async function loadCave(path: string, options: { config?: CaveConfig; limits?: CheckpointLimits } = {}): Promise<CaVE> {
  const dict = await readStateDictFile(path, options.limits);
  return caveFromStateDict(dict, options.config);
}

export function caveFromStateDict(dict: ReadonlyMap<string, HostTensor>, config?: CaveConfig): CaVE {
  const model = new CaVE(config ?? caveConfigOf(dict));
  try {
    model.loadStateDict(dict);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model.eval();
}

/** Save every state-dict entry (BatchNorm buffers included) under the official keys, atomically (F16 halves the file). */
export async function saveCave(model: CaVE, path: string, metadata: Record<string, string> = {}, dtype: 'F32' | 'F16' = 'F32'): Promise<void> {
  const dict = await model.stateDict();
  const bytes = writeSafetensors(Object.fromEntries([...dict].map(([k, t]) => [k, { ...t, dtype }])), {
    config: JSON.stringify(model.config),
    ...metadata,
  });
  await writeFileAtomic(path, bytes);
}
