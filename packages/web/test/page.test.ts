// The built page in headless Chromium, driven as a user would, checked against Node's `codiff restore` path.
import { readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage } from '@codiff/image-io';
import { encodeJpeg } from '@codiff/jpeg-codec';
import { liteModelDir } from '@codiff/model-lite/node';
import { useBackend } from '@codiff/nn';
import { restoreImage, type CodiffGenerator, type Pixels } from '@codiff/pipeline';
import { loadCodiffFolder } from '@codiff/pipeline/node';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveSite, type ServedSite } from '@codiff/web/node';
import { dataset, download, dropFile, hasChromium, launchChromium, linkBytes, openPage, text, waitForState, withReadyPage } from './browser.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SAMPLE = join(root, 'samples', 'sample-q10.jpg');
const SAMPLE_PNG = join(root, 'samples', 'sample.png');
const KODIM01 = join(root, '..', 'shared', 'photos', 'test', 'Kodak-nonLIVE1', 'kodim01.png');
const ARTEFACTS = join(root, '.test-results', 'web');
const FINISHED = ['done', 'error', 'cancelled', 'failed'];

/**
 * How far the page's PNG may be from Node's restore of the same file, in 8-bit levels. wasm: the same kernels, only
 * the thread count differs (the page runs XNNPACK on threads, the test on one); measured here: identical. WebGPU:
 * float32 on another device, summed in another order; measured on SwiftShader: max 1, mean 0.004.
 */
const TOLERANCE = { wasm: { max: 1, mean: 0.001 }, webgpu: { max: 2, mean: 0.01 } } as const;

function difference(a: Pixels, b: Pixels): { max: number; mean: number } {
  expect([a.width, a.height, a.channels]).toEqual([b.width, b.height, b.channels]);
  let max = 0, sum = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.data.length };
}

if (!hasChromium) console.warn('codiff web: no Chromium (/usr/bin/chromium or CHROMIUM_PATH): the browser tests are skipped');

describe.skipIf(!hasChromium)('the page in headless Chromium', () => {
  let site: ServedSite;
  let browser: Browser;
  let reference: Pixels;
  let generator: CodiffGenerator;
  let sample: Uint8Array;

  beforeAll(async () => {
    site = await serveSite({ port: 0 });
    browser = await launchChromium();
    await mkdir(ARTEFACTS, { recursive: true });
    sample = new Uint8Array(await readFile(SAMPLE));
    // Node's restore of the sample: what `codiff restore samples/sample-q10.jpg` writes.
    await useBackend('wasm');
    generator = await loadCodiffFolder(liteModelDir());
    reference = await restoreImage(generator, decodeImage(sample, { orient: true }));
  }, 300_000);

  afterAll(async () => {
    generator?.dispose();
    await browser?.close();
    await site?.close();
  });

  for (const backend of ['wasm', 'webgpu'] as const) {
    it(`restores the dropped sample JPEG on ${backend}; the downloaded PNG equals Node's restore within tolerance`, async (ctx) => {
      const tab = await openPage(browser, `${site.url}?backend=${backend}`);
      try {
        const ready = await waitForState(tab.page, ['ready', 'failed'], 120_000);
        if (ready === 'failed' && backend === 'webgpu') {
          const reason = await text(tab.page, '#error');
          if (/WebGPU|adapter/i.test(reason)) return ctx.skip(`no WebGPU in this Chromium: ${reason}`);
        }
        expect(ready, await text(tab.page, '#error')).toBe('ready');
        expect(await text(tab.page, '#backend')).toBe(backend === 'webgpu' ? 'WebGPU' : 'wasm (CPU)');
        await dropFile(tab.page, '#drop', 'sample-q10.jpg', sample, 'image/jpeg');
        expect(await waitForState(tab.page, FINISHED, 600_000), await text(tab.page, '#error')).toBe('done');
        expect(await text(tab.page, '#info')).toMatch(/^sample-q10\.jpg: 320×240, quality 10 from its tables; CaVE estimates \d+ from the pixels$/);
        expect(await tab.page.$eval('#info', (e) => (e as HTMLElement).hidden)).toBe(false);
        await tab.page.screenshot({ path: join(ARTEFACTS, `result-${backend}.png`), fullPage: true });
        const saved = await download(tab.page, '#download', tab.downloads);
        expect(saved.name).toBe('sample-q10-restored.png');
        const diff = difference(decodeImage(saved.bytes), reference);
        console.info(`page (${backend}) vs Node (wasm): max |Δ| ${diff.max}, mean |Δ| ${diff.mean.toFixed(4)} levels`);
        expect(diff.max, `max |Δ| ${diff.max}, mean ${diff.mean}`).toBeLessThanOrEqual(TOLERANCE[backend].max);
        expect(diff.mean).toBeLessThanOrEqual(TOLERANCE[backend].mean);
        expect(tab.errors).toEqual([]);
      } finally {
        await tab.close();
      }
    }, 900_000);
  }

  it('codiff-lite offers its post-filter, off at first; switching it after a restore gives Node’s postFilter result and back, without the model', async () => {
    const filtered = await restoreImage(generator, decodeImage(sample, { orient: true }), { postFilter: true });
    expect(difference(filtered, reference).max, 'the filter changes the sample').toBeGreaterThan(0);
    await withReadyPage(browser, `${site.url}?backend=wasm`, async (tab) => {
      expect(await tab.page.$eval('#post-filter-option', (e) => (e as HTMLElement).hidden)).toBe(false);
      expect(await tab.page.$eval('#post-filter', (e) => (e as HTMLInputElement).checked)).toBe(false);
      await dropFile(tab.page, '#drop', 'sample-q10.jpg', sample, 'image/jpeg');
      expect(await waitForState(tab.page, FINISHED, 300_000)).toBe('done');
      expect(difference(decodeImage(await linkBytes(tab.page, '#download')), reference).max).toBeLessThanOrEqual(TOLERANCE.wasm.max);
      // The change handler marks the page busy before the click returns; the worker answers with the switch step
      // alone (the timing line says so), not a restore.
      await tab.page.click('#post-filter');
      expect(await waitForState(tab.page, FINISHED, 60_000), await text(tab.page, '#error')).toBe('done');
      expect(await text(tab.page, '#timing')).toMatch(/^post-filter on in \d+\.\d\d s$/);
      const diff = difference(decodeImage(await linkBytes(tab.page, '#download')), filtered);
      expect(diff.max, `max |Δ| ${diff.max}, mean ${diff.mean}`).toBeLessThanOrEqual(TOLERANCE.wasm.max);
      expect(diff.mean).toBeLessThanOrEqual(TOLERANCE.wasm.mean);
      await tab.page.click('#post-filter');
      expect(await waitForState(tab.page, FINISHED, 60_000)).toBe('done');
      expect(await text(tab.page, '#timing')).toMatch(/^post-filter off in /);
      expect(difference(decodeImage(await linkBytes(tab.page, '#download')), reference).max).toBeLessThanOrEqual(TOLERANCE.wasm.max);
      // With the box checked, a new restore runs the filter itself.
      await tab.page.click('#post-filter');
      await waitForState(tab.page, FINISHED, 60_000);
      await dropFile(tab.page, '#drop', 'sample-q10.jpg', sample, 'image/jpeg');
      expect(await waitForState(tab.page, FINISHED, 300_000)).toBe('done');
      expect(await text(tab.page, '#timing')).toMatch(/^restored in /);
      expect(difference(decodeImage(await linkBytes(tab.page, '#download')), filtered).max).toBeLessThanOrEqual(TOLERANCE.wasm.max);
      expect(tab.errors).toEqual([]);
    });
  }, 600_000);

  it('a second visit loads the model from Cache Storage', async () => {
    await withReadyPage(browser, `${site.url}?backend=wasm`, async (tab) => {
      expect(await tab.page.$eval('#model', (e) => (e as HTMLElement).dataset.source)).toBe('network');
      await tab.page.reload();
      expect(await waitForState(tab.page, ['ready', 'failed'], 120_000)).toBe('ready');
      expect(await tab.page.$eval('#model', (e) => (e as HTMLElement).dataset.source)).toBe('cache');
      expect(await text(tab.page, '#model')).toContain('from this browser’s cache');
    });
  }, 300_000);

  it('a model folder picked through the directory input loads and restores like the built-in model', async () => {
    await withReadyPage(browser, `${site.url}?backend=wasm`, async (tab) => {
      const input = await tab.page.$('#folder-input');
      await (input as unknown as { uploadFile(...paths: string[]): Promise<void> }).uploadFile(liteModelDir());
      await tab.page.waitForFunction(() => document.getElementById('model')!.dataset.source === 'folder', { timeout: 120_000 });
      // Every file of the folder counts, the luma post-filter too, which the page then offers.
      const files = readdirSync(liteModelDir(), { recursive: true, withFileTypes: true }).filter((f) => f.isFile());
      const bytes = files.reduce((n, f) => n + statSync(join(f.parentPath, f.name)).size, 0);
      expect(await text(tab.page, '#model')).toBe(`model (${(bytes / 1e6).toFixed(1)} MB, from your folder)`);
      expect(await tab.page.$eval('#post-filter-option', (e) => (e as HTMLElement).hidden)).toBe(false);
      await dropFile(tab.page, '#drop', 'sample-q10.jpg', sample, 'image/jpeg');
      expect(await waitForState(tab.page, FINISHED, 300_000)).toBe('done');
      const saved = await download(tab.page, '#download', tab.downloads);
      expect(difference(decodeImage(saved.bytes), reference).max).toBeLessThanOrEqual(TOLERANCE.wasm.max);
    });
  }, 600_000);

  it('a corrupt JPEG and a PNG get a clear message in the page, and the page goes on working (drop and paste)', async () => {
    await withReadyPage(browser, `${site.url}?backend=wasm`, async (tab) => {
      await dropFile(tab.page, '#drop', 'broken.jpg', sample.subarray(0, 700), 'image/jpeg');
      expect(await waitForState(tab.page, FINISHED, 120_000)).toBe('error');
      expect(await text(tab.page, '#error')).toMatch(/^broken\.jpg: JPEG: .+/);
      await dropFile(tab.page, '#drop', 'sample.png', new Uint8Array(await readFile(SAMPLE_PNG)), 'image/png');
      await tab.page.waitForFunction(() => document.getElementById('error')!.textContent!.startsWith('sample.png'), { timeout: 60_000 });
      expect(await text(tab.page, '#error')).toBe('sample.png is a PNG, not a JPEG: the Degrade tab turns a PNG into a JPEG of any quality');
      await dropFile(tab.page, '#drop', 'sample-q10.jpg', sample, 'image/jpeg');
      expect(await waitForState(tab.page, FINISHED, 300_000)).toBe('done');
      expect(await tab.page.$eval('#error', (e) => (e as HTMLElement).hidden)).toBe(true);
      // Pasting a JPEG (a copied file) restores it too.
      await tab.page.evaluate((b64: string) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], 'pasted.jpg', { type: 'image/jpeg' }));
        document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true }));
      }, Buffer.from(sample).toString('base64'));
      await tab.page.waitForFunction(() => document.getElementById('info')!.textContent!.startsWith('pasted.jpg'), { timeout: 60_000 });
      expect(await waitForState(tab.page, FINISHED, 300_000)).toBe('done');
    });
  }, 600_000);

  it('a large image: cancelling between tiles frees its tensors (count back to idle); restored to the end, the same', async () => {
    // kodim01 2×2 (1536×1024, QF 20): six latent tiles on codiff-lite.
    const photo = decodeImage(new Uint8Array(await readFile(KODIM01)));
    const [w, h] = [photo.width * 2, photo.height * 2];
    const big = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) big.set(photo.data.subarray(((y % photo.height) * photo.width + (x % photo.width)) * 3, ((y % photo.height) * photo.width + (x % photo.width)) * 3 + 3), (y * w + x) * 3);
    const jpeg = encodeJpeg({ width: w, height: h, channels: 3, data: big }, { quality: 20 });
    await withReadyPage(browser, `${site.url}?backend=wasm`, async (tab) => {
      const idle = (await dataset(tab.page)).tensors;
      await dropFile(tab.page, '#drop', 'big.jpg', jpeg, 'image/jpeg');
      await tab.page.waitForFunction(() => /^UNet tiles [1-5]\/6$/.test(document.getElementById('stage')!.textContent!), { timeout: 300_000, polling: 50 });
      await tab.page.click('#cancel');
      expect(await waitForState(tab.page, FINISHED, 120_000)).toBe('cancelled');
      expect((await dataset(tab.page)).tensors).toBe(idle);
      // The same image restored to the end: all six tiles, a full-size PNG, and again nothing left allocated.
      await dropFile(tab.page, '#drop', 'big.jpg', jpeg, 'image/jpeg');
      expect(await waitForState(tab.page, FINISHED, 600_000)).toBe('done');
      expect((await dataset(tab.page)).tensors).toBe(idle);
      const saved = await download(tab.page, '#download', tab.downloads);
      const restored = decodeImage(saved.bytes);
      expect([restored.width, restored.height, restored.channels]).toEqual([w, h, 3]);
    });
  }, 600_000);

  it('the Degrade tab writes the same JPEG bytes as @codiff/jpeg-codec, and "Restore it" restores that JPEG', async () => {
    const png = new Uint8Array(await readFile(SAMPLE_PNG));
    await withReadyPage(browser, `${site.url}?backend=wasm`, async (tab) => {
      await tab.page.click('#tab-degrade');
      const input = await tab.page.$('#degrade-input');
      await writeFile(join(tab.downloads, 'codiff-web-sample.png'), png);
      await (input as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(join(tab.downloads, 'codiff-web-sample.png'));
      await tab.page.$eval('#quality', (e) => ((e as HTMLInputElement).value = '25'));
      await tab.page.click('#degrade');
      await tab.page.waitForFunction(() => document.body.dataset.degraded === 'codiff-web-sample-q25.jpg', { timeout: 60_000 });
      const saved = await download(tab.page, '#degraded-download', tab.downloads);
      expect(saved.name).toBe('codiff-web-sample-q25.jpg');
      expect(Buffer.from(saved.bytes).equals(Buffer.from(encodeJpeg(decodeImage(png), { quality: 25 })))).toBe(true);
      await tab.page.click('#degraded-restore');
      expect(await waitForState(tab.page, FINISHED, 300_000)).toBe('done');
      expect(await text(tab.page, '#info')).toContain('quality 25 from its tables');
    });
  }, 600_000);
});
