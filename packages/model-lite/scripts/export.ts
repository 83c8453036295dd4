// Writes a trained codiff-lite (a stage-2 lite run's model/ folder, F32) into this package's model/ as F16:
//   npx tsx packages/model-lite/scripts/export.ts runs/stage2-lite/model
import { rmSync } from 'node:fs';
import { useBackend } from '@codiff/nn';
import { loadCodiffFolder, saveCodiffModel } from '@codiff/pipeline/node';
import { liteModelDir } from '../src/node.js';

const from = process.argv[2];
if (!from) throw new Error('usage: export.ts <model folder of a stage-2 lite run>');
await useBackend('cpu');
const g = await loadCodiffFolder(from);
rmSync(liteModelDir(), { recursive: true, force: true });
await saveCodiffModel(g, liteModelDir(), 'F16');
g.dispose();
console.log(`${from} → ${liteModelDir()} (F16)`);
