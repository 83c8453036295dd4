// The page's weight and its time to a first restore of a 768×512 photo in headless Chromium (a fresh profile, as a
// first visit): `npx nx run web:bench` (builds first). Options: --backend wasm|webgpu (default wasm), --qf N (10).
// Prints one JSON object; nothing here is a test.
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { decodeImage } from '@codiff/image-io';
import { encodeJpeg } from '@codiff/jpeg-codec';
import { serveSite, siteDir } from '@codiff/web/node';
import { dropFile, launchChromium, openPage, text, waitForState } from '../test/browser.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const backend = option('--backend', 'wasm');
const qf = Number(option('--qf', '10'));
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const photo = join(root, '..', 'shared', 'photos', 'test', 'Kodak-nonLIVE1', 'kodim01.png');

/** Every file of the built site but the model's weights, by kind. */
async function pageWeight(): Promise<Record<string, number>> {
  const dir = siteDir();
  const files = (await readdir(dir, { recursive: true })).filter((f) => !f.startsWith('models/'));
  const weight: Record<string, number> = {};
  for (const f of files) {
    const s = await stat(join(dir, f));
    if (!s.isFile()) continue;
    const kind = extname(f).slice(1);
    weight[kind] = (weight[kind] ?? 0) + s.size;
  }
  return weight;
}

const jpeg = encodeJpeg(decodeImage(new Uint8Array(await readFile(photo))), { quality: qf });
const site = await serveSite({ port: 0 });
const browser = await launchChromium();
try {
  const fetched = new Map<string, { bytes: number; gzip: number }>();
  const start = performance.now();
  const tab = await openPage(browser, `${site.url}?backend=${backend}`, (page) =>
    page.on('response', (r) => void r.buffer().then((b) => fetched.set(r.url(), { bytes: b.length, gzip: gzipSync(b, { level: 9 }).length }), () => undefined)),
  );
  const state = await waitForState(tab.page, ['ready', 'failed'], 300_000);
  if (state !== 'ready') throw new Error(`the page failed: ${await text(tab.page, '#error')}`);
  const ready = performance.now();
  await dropFile(tab.page, '#drop', 'kodim01.jpg', jpeg, 'image/jpeg');
  if ((await waitForState(tab.page, ['done', 'error'], 600_000)) !== 'done') throw new Error(await text(tab.page, '#error'));
  const done = performance.now();
  const first = await text(tab.page, '#timing');
  await dropFile(tab.page, '#drop', 'kodim01.jpg', jpeg, 'image/jpeg');
  await waitForState(tab.page, ['restoring'], 10_000).catch(() => undefined);
  await waitForState(tab.page, ['done', 'error'], 600_000);
  const second = await text(tab.page, '#timing');
  const isolated = await tab.page.evaluate(() => crossOriginIsolated);
  // The site's own files: not the model, not the blob: scripts the wasm backend makes for its threads.
  const visit = [...fetched].filter(([url]) => url.startsWith(site.url) && !url.includes('/models/'));
  const weight = await pageWeight();
  console.log(
    JSON.stringify(
      {
        chromium: await browser.version(),
        backend: await text(tab.page, '#backend'),
        crossOriginIsolated: isolated,
        image: `kodim01 768×512 at QF ${qf}`,
        pageWeightBuilt: { ...weight, jsAndWasm: (weight.js ?? 0) + (weight.wasm ?? 0) },
        pageWeightFetched: {
          files: visit.map(([url, f]) => `${new URL(url).pathname} ${f.bytes}`),
          bytes: visit.reduce((n, [, f]) => n + f.bytes, 0),
          gzipBytes: visit.reduce((n, [, f]) => n + f.gzip, 0),
        },
        seconds: {
          loadToReady: +((ready - start) / 1000).toFixed(2),
          dropToDone: +((done - ready) / 1000).toFixed(2),
          loadToFirstRestore: +((done - start) / 1000).toFixed(2),
          pageTimingFirst: first,
          pageTimingSecond: second,
        },
      },
      null,
      2,
    ),
  );
  await tab.close();
} finally {
  await browser.close();
  await site.close();
}
