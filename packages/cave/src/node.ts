// Node-only: loading and saving CaVE checkpoints from files.
import { writeSafetensors, type CheckpointLimits } from '@codiff/nn';
import { readCheckpointFile } from '@codiff/nn/node';
import { writeFileAtomic } from '@codiff/image-io/node';
import { caveFromCheckpoint, type CaVE, type CaveConfig } from './cave.js';

export { caveFromStateDict } from './cave.js';

/**
 * A CaVE from a checkpoint file: the official `cave.pth`/`G.pth` (zip or legacy `torch.save`, read without running
 * pickle code) or a safetensors file, BatchNorm statistics included. The configuration is read from the shapes
 * unless given, the QF head's training patch from a safetensors file's metadata unless `qualityPatch` is given;
 * loading is strict (missing, unexpected or mis-shaped keys are named). The model is in eval mode.
 */
export async function loadCave(path: string, options: { config?: CaveConfig; qualityPatch?: number; limits?: CheckpointLimits } = {}): Promise<CaVE> {
  return caveFromCheckpoint(await readCheckpointFile(path, options.limits), options);
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
