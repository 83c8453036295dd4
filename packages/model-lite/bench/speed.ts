// codiff-lite's restore time on a 768×512 photo (Kodak kodim01 at QF 10) beside Debian's jpegqs on the same JPEG,
// in one run (the ratio is of numbers measured together), then the same restore with the luma post-filter
// (`--post-filter`), alternating with the default so both see the same machine. Default backend and threads, as
// `codiff restore` uses:
//   npx tsx packages/model-lite/bench/speed.ts [--backend wasm|webgpu] [--threads N] [--repeat 3]
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readImageFile } from '@codiff/image-io/node';
import { decodeJpeg, encodeJpeg } from '@codiff/jpeg-codec';
import { psnr } from '@codiff/metrics';
import { defaultBackend, useBackend, wasmThreadCount, type BackendName } from '@codiff/nn';
import { restoreImage, type Pixels } from '@codiff/pipeline';
import { loadCodiffFolder } from '@codiff/pipeline/node';
import { sharedPhotos } from '../../../test-support/golden.js';
import { liteModelDir } from '../src/node.js';

const { values } = parseArgs({ options: { backend: { type: 'string' }, threads: { type: 'string' }, repeat: { type: 'string', default: '3' } } });
const backend = (values.backend ?? defaultBackend()) as BackendName;
// `codiff restore`'s default: one wasm thread per core (at most 8).
await useBackend(backend, backend === 'wasm' ? { threads: Number(values.threads ?? Math.min(8, availableParallelism())) } : {});

const original = await readImageFile(sharedPhotos('test', 'Kodak-nonLIVE1', 'kodim01.png'));
const jpegBytes = encodeJpeg(original, { quality: 10 });
const jpeg = decodeJpeg(jpegBytes) as Pixels;
const dir = mkdtempSync(join(tmpdir(), 'codiff-speed-'));
writeFileSync(join(dir, 'in.jpg'), jpegBytes);

let t = performance.now();
const g = await loadCodiffFolder(liteModelDir());
const loadSeconds = (performance.now() - t) / 1000;
const runs: number[] = [];
let stages: Record<string, number> = {};
let restored: Pixels = jpeg;
for (let i = 0; i < Number(values.repeat); i++) {
  t = performance.now();
  let last = t;
  stages = {};
  // Seconds from the previous stage's end (CaVE tokens and the stand-in's reshape count as 'encode').
  restored = await restoreImage(g, jpeg, {
    onProgress: (stage, done, total) => {
      if (done < total) return;
      const now = performance.now();
      stages[stage] = +((now - last) / 1000).toFixed(3);
      last = now;
    },
  });
  runs.push((performance.now() - t) / 1000);
}
// The post-filter's cost: default and filtered restores in turn, the difference of their medians.
const pairs: { plain: number; filtered: number }[] = [];
let filtered: Pixels = jpeg;
for (let i = 0; i < Number(values.repeat); i++) {
  t = performance.now();
  await restoreImage(g, jpeg);
  const plain = (performance.now() - t) / 1000;
  t = performance.now();
  filtered = await restoreImage(g, jpeg, { postFilter: true });
  pairs.push({ plain, filtered: (performance.now() - t) / 1000 });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const jpegqsRuns: number[] = [];
for (let i = 0; i < Number(values.repeat); i++) {
  t = performance.now();
  execFileSync('jpegqs', [join(dir, 'in.jpg'), join(dir, 'out.jpg')], { stdio: 'ignore' });
  jpegqsRuns.push((performance.now() - t) / 1000);
}
const best = (xs: number[]) => Math.min(...xs);
console.log(
  JSON.stringify({
    image: 'kodim01 768×512, QF 10',
    backend,
    threads: backend === 'wasm' ? wasmThreadCount() : undefined,
    loadSeconds: +loadSeconds.toFixed(2),
    restoreSeconds: runs.map((s) => +s.toFixed(3)),
    lastRunStages: stages,
    jpegqsSeconds: jpegqsRuns.map((s) => +s.toFixed(3)),
    ratioBestToJpegqs: +(best(runs) / best(jpegqsRuns)).toFixed(2),
    postFilter: {
      restoreSeconds: pairs.map((p) => +p.filtered.toFixed(3)),
      addedSecondsMedian: +(median(pairs.map((p) => p.filtered)) - median(pairs.map((p) => p.plain))).toFixed(3),
    },
    psnrY: {
      jpeg: +psnr(original, jpeg, { on: 'y8' }).toFixed(2),
      restored: +psnr(original, restored, { on: 'y8' }).toFixed(2),
      postFilter: +psnr(original, filtered, { on: 'y8' }).toFixed(2),
    },
  }),
);
g.dispose();
