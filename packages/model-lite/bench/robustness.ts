// What the model card reports beside `codiff eval`: double JPEG (aligned and non-aligned, as FBCNN's tests) and grey
// single JPEG, restored by codiff-lite; mean PSNR-Y (MATLAB-rounded Y) of the JPEG and of the restoration.
//   npx tsx packages/model-lite/bench/robustness.ts
import { availableParallelism } from 'node:os';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readImageFile } from '@codiff/image-io/node';
import { degrade, doubleCompress, type RawImage } from '@codiff/jpeg-codec';
import { psnr } from '@codiff/metrics';
import { useBackend } from '@codiff/nn';
import { restoreImage, type Pixels } from '@codiff/pipeline';
import { loadCodiffFolder } from '@codiff/pipeline/node';
import { sharedPhotos } from '../../../test-support/golden.js';
import { liteModelDir } from '../src/node.js';

await useBackend('wasm', { threads: Math.min(8, availableParallelism()) });
const g = await loadCodiffFolder(liteModelDir());
const files = (set: string) => readdirSync(sharedPhotos('test', set)).sort().map((f) => sharedPhotos('test', set, f));
const colour = [...files('Kodak-nonLIVE1'), ...files('McMaster')];

/** The original with its first `shift` rows and columns cut, to compare with a shifted double JPEG. */
function cropped(image: RawImage, shift: number): RawImage {
  if (shift === 0) return image;
  const [w, h, c] = [image.width - shift, image.height - shift, image.channels];
  const data = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) data.set(image.data.subarray(((y + shift) * image.width + shift) * c, ((y + shift) * image.width + shift + w) * c), y * w * c);
  return { width: w, height: h, channels: c, data };
}

const cases: { name: string; images: string[]; make: (x: RawImage) => { jpeg: RawImage; reference: RawImage } }[] = [
  { name: 'double JPEG 90→30, aligned', images: colour, make: (x) => ({ jpeg: doubleCompress(x, 90, 30), reference: x }) },
  { name: 'double JPEG 90→30, shifted by 4 (non-aligned)', images: colour, make: (x) => ({ jpeg: doubleCompress(x, 90, 30, { shift: 4 }), reference: cropped(x, 4) }) },
  { name: 'double JPEG 30→90, shifted by 4 (non-aligned)', images: colour, make: (x) => ({ jpeg: doubleCompress(x, 30, 90, { shift: 4 }), reference: cropped(x, 4) }) },
  { name: 'grey JPEG QF 10 (Classic5)', images: files('Classic5'), make: (x) => ({ jpeg: degrade(x, { quality: 10 }), reference: x }) },
];

console.log('| case | images | JPEG PSNR-Y | codiff-lite PSNR-Y | gain |\n|---|---|---|---|---|');
for (const c of cases) {
  let before = 0, after = 0;
  for (const file of c.images) {
    const { jpeg, reference } = c.make(await readImageFile(file));
    const restored = await restoreImage(g, jpeg as Pixels);
    before += psnr(reference, jpeg, { on: 'y8' });
    after += psnr(reference, restored, { on: 'y8' });
  }
  const [b, a] = [before / c.images.length, after / c.images.length];
  console.log(`| ${c.name} | ${c.images.length} | ${b.toFixed(2)} | ${a.toFixed(2)} | ${(a - b >= 0 ? '+' : '') + (a - b).toFixed(2)} |`);
}
g.dispose();
