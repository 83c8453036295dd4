import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage } from '@codiff/image-io';
import { afterAll, describe, expect, it } from 'vitest';
import { sharedPhotos } from '../../../test-support/golden.js';
import { commandRestorer, evaluate, findImageSets, jpegqs, writeReport } from '../src/node.js';

const PHOTOS = sharedPhotos('test');
const work = mkdtempSync(join(tmpdir(), 'codiff-eval-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const hasJpegqs = spawnSync('sh', ['-c', 'command -v jpegqs']).status === 0;
if (!hasJpegqs) console.warn('eval: jpegqs is not installed (apt-get install jpegqs); its anchor test is skipped');

/** Mean of a metric over the rows of one method. */
const mean = (rows: { method: string; psnr: number }[], method: string) => {
  const values = rows.filter((r) => r.method === method).map((r) => r.psnr);
  return values.reduce((s, v) => s + v, 0) / values.length;
};

describe('evaluate', () => {
  it('finds the three test sets of photos/test', async () => {
    const sets = await findImageSets(PHOTOS);
    expect(sets.map((s) => [s.name, s.files.length])).toEqual([['Classic5', 5], ['Kodak-nonLIVE1', 5], ['McMaster', 18]]);
    await expect(findImageSets(join(work, 'nowhere'))).rejects.toThrow(/nowhere: no such folder/);
  });

  it.skipIf(!hasJpegqs)('reproduces the Classic5 anchors at QF 10 (full protocol): JPEG 27.82 dB, jpegqs 27.74 dB', async () => {
    const [classic5] = await findImageSets(join(PHOTOS, 'Classic5'));
    const result = await evaluate({ sets: [classic5], qualities: [10], protocol: 'full', compare: [jpegqs()], models: {}, maxPixels: 1e8 });
    expect(Math.abs(mean(result.rows, 'jpeg') - 27.82)).toBeLessThan(0.006);
    expect(Math.abs(mean(result.rows, 'jpegqs') - 27.74)).toBeLessThan(0.006);
  });

  it('runs a command as a restorer and writes CSV, summary and contact sheets', async () => {
    const [kodak] = await findImageSets(join(PHOTOS, 'Kodak-nonLIVE1'));
    const sets = [{ name: 'Kodak', files: kodak.files.slice(0, 2) }];
    const seen: number[] = [];
    // `cp` hands back the JPEG itself: the "restored" scores must equal the JPEG row's.
    const result = await evaluate(
      { sets, qualities: [10, 40], protocol: 'codiff', restorer: commandRestorer('identity', 'cp {in} {out}'), compare: [], models: {}, maxPixels: 1e8 },
      (p) => seen.push(p.done),
    );
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(result.rows).toHaveLength(8);
    for (const r of result.rows.filter((row) => row.method === 'identity')) {
      const jpegRow = result.rows.find((row) => row.method === 'jpeg' && row.image === r.image && row.qf === r.qf)!;
      expect([r.psnr, r.ssim, r.psnrB]).toEqual([jpegRow.psnr, jpegRow.ssim, jpegRow.psnrB]);
    }
    expect(result.summary.map((s) => [s.qf, s.method, s.images])).toEqual([[10, 'jpeg', 2], [10, 'identity', 2], [40, 'jpeg', 2], [40, 'identity', 2]]);
    const written = await writeReport(join(work, 'report'), result, 'codiff');
    expect(written.map((p) => p.slice(work.length + 8))).toEqual(['results.csv', 'summary.md', 'summary.json', 'contact-qf10.png', 'contact-qf40.png']);
    const csv = readFileSync(join(work, 'report/results.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('set,image,qf,method,psnr,ssim,psnrB,bpp,seconds');
    expect(csv).toHaveLength(9);
    expect(readFileSync(join(work, 'report/summary.md'), 'utf8')).toMatch(/## QF 10\n\n\| set \| images \| method \| PSNR-Y \| SSIM-Y \| PSNR-B \| bpp \| s\/image \|/);
    const sheet = decodeImage(new Uint8Array(readFileSync(join(work, 'report/contact-qf10.png'))));
    expect([sheet.width, sheet.height]).toEqual([3 * 132 + 4, 2 * 132 + 4]);
  });

  it('a failing restorer command is one clear error', async () => {
    const [kodak] = await findImageSets(join(PHOTOS, 'Kodak-nonLIVE1'));
    const options = { sets: [{ name: 'k', files: kodak.files.slice(0, 1) }], qualities: [10], protocol: 'codiff' as const, compare: [], models: {}, maxPixels: 1e8 };
    await expect(evaluate({ ...options, restorer: commandRestorer('missing', 'no-such-program {in} {out}') })).rejects.toThrow(/missing: 'no-such-program' is not installed/);
    await expect(evaluate({ ...options, restorer: commandRestorer('false', 'false {in} {out}') })).rejects.toThrow(/false failed \(exit 1\)/);
    expect(() => commandRestorer('x', 'cp {in}')).toThrow(/must contain \{in\} and \{out\}/);
  });
});
