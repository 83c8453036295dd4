// Regenerates samples/sample.png, the README demo's input: npx tsx scripts/make-sample.ts
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { syntheticPhoto } from '../packages/jpeg-codec/test/synthetic.js';

const image = syntheticPhoto(320, 240, 2026);
const png = new PNG({ width: image.width, height: image.height });
for (let i = 0; i < image.width * image.height; i++) {
  png.data.set(image.data.subarray(3 * i, 3 * i + 3), 4 * i);
  png.data[4 * i + 3] = 255;
}
writeFileSync(new URL('../samples/sample.png', import.meta.url), PNG.sync.write(png));
