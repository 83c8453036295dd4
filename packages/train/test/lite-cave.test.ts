import { fileURLToPath } from 'node:url';
import { useBackend } from '@codiff/nn';
import { loadCave } from '@codiff/cave/node';
import { describe, expect, it } from 'vitest';
import { sharedPhotos } from '../../../test-support/golden.js';
import { qualityStudy } from '../src/node.js';

const LITE_CAVE = fileURLToPath(new URL('../checkpoints/cave-lite-b64-anneal.safetensors', import.meta.url));

describe('the committed lite CaVE (checkpoints/cave-lite-b64-anneal.safetensors)', () => {
  it('reads the JPEG quality of test photos it never saw within the 5 the stage-1 issue asks', async () => {
    await useBackend('wasm');
    const cave = await loadCave(LITE_CAVE);
    expect(cave.config.qualityPatch).toBe(64);
    // One photo of each test set (grey Classic5 as three equal channels), across the range.
    const photos = [sharedPhotos('test', 'Classic5', 'boats.png'), sharedPhotos('test', 'Kodak-nonLIVE1', 'kodim07.png'), sharedPhotos('test', 'McMaster', '13.png')];
    const study = await qualityStudy(cave, photos, [20, 50, 80], { project: false });
    cave.dispose();
    for (const row of study.rows) expect(Math.abs(row.meanEstimate - row.quality), `QF ${row.quality}`).toBeLessThan(8);
    expect(study.maeBetween(10, 90)).toBeLessThanOrEqual(5);
  }, 120_000);
});
