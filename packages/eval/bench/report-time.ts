// How long `codiff eval` takes on the shared test sets at QF 5, 10, 20, 40 (the goal: under 5 minutes,
// restorers aside), with LPIPS-squeeze, and what jpegqs adds. Run: nx run eval:bench [-- --threads 2]
import { parseArgs } from 'node:util';
import { sharedPhotos, sharedWeights } from '../../../test-support/golden.js';
import { useBackend } from '@codiff/nn';
import { evaluate, findImageSets, jpegqs, loadPerceptualModels } from '../src/node.js';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, data: { type: 'string', default: sharedPhotos('test') } } });
await useBackend('wasm', { threads: Number(values.threads) });
const sets = await findImageSets(values.data);
const models = await loadPerceptualModels(sharedWeights(), undefined);
const images = sets.reduce((n, s) => n + s.files.length, 0);
const base = { sets, qualities: [5, 10, 20, 40], protocol: 'codiff' as const, models, maxPixels: 1e8 };

for (const [what, compare] of [['JPEG rows only (restorers aside)', []], ['with jpegqs', [jpegqs()]]] as const) {
  const start = performance.now();
  const result = await evaluate({ ...base, compare: [...compare] });
  const seconds = (performance.now() - start) / 1000;
  console.log(`${what}: ${images} images × 4 QFs, ${result.rows.length} measurements (PSNR, SSIM, PSNR-B, LPIPS-squeeze): ${seconds.toFixed(1)} s, wasm ${values.threads} thread(s)`);
}
