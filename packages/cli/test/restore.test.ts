import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crop, encodeJpeg } from '@codiff/jpeg-codec';
import { decodeImage, encodePng, resizeLanczos } from '@codiff/image-io';
import { psnr } from '@codiff/metrics';
import { lumaPostFilterFromBytes, POST_FILTER_FILE, smoothBlockEdges, type Pixels } from '@codiff/pipeline';
import { liteModelDir } from '@codiff/model-lite/node';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { codiff } from './support.js';
import { golden, readPngRgb, sharedPhotos } from '../../../test-support/golden.js';

// In-process runs use one wasm thread (see cli.test.ts).
process.env.CODIFF_WASM_THREADS = '1';


let dir = '';
let model = '';
let inputs = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'codiff-restore-'));
  // A model folder in the layout `--model` expects, from the golden tiny CODiff (official formats).
  model = join(dir, 'model');
  for (const [folder, name] of [['unet', 'unet-tiny'], ['vae', 'vae-tiny']]) {
    mkdirSync(join(model, folder), { recursive: true });
    copyFileSync(golden(name, 'config.json'), join(model, folder, 'config.json'));
    copyFileSync(golden(name, 'weights.safetensors'), join(model, folder, 'diffusion_pytorch_model.safetensors'));
  }
  copyFileSync(golden('codiff-tiny', 'model.pkl'), join(model, 'codiff.pkl'));
  copyFileSync(golden('codiff-tiny', 'cave.pth'), join(model, 'cave.pth'));
  // The mixed folder of the issue: a 1024×768 JPEG, a grey JPEG, a PNG and a corrupt file.
  inputs = join(dir, 'in');
  mkdirSync(join(inputs, 'sub'), { recursive: true });
  const kodak = readPngRgb(sharedPhotos('test', 'Kodak-nonLIVE1', 'kodim07.png'));
  writeFileSync(join(inputs, 'big.jpg'), encodeJpeg(resizeLanczos(kodak, 1024, 768), { quality: 20 }));
  const boats = decodeImage(readFileSync(sharedPhotos('test', 'Classic5', 'boats.png')));
  writeFileSync(join(inputs, 'sub', 'grey.jpg'), encodeJpeg({ ...boats, data: boats.data, channels: 1 }, { quality: 10 }));
  copyFileSync(sharedPhotos('test', 'Classic5', 'lena.png'), join(inputs, 'lena.png'));
  writeFileSync(join(inputs, 'corrupt.jpg'), Uint8Array.from([0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 1, 2, 3]));
});

describe('codiff restore (golden tiny CODiff as --model)', () => {
  it('restores a mixed folder: each image to a PNG of its size (grey stays grey), the corrupt file reported, exit 1', async () => {
    const out = join(dir, 'out');
    const r = await codiff('restore', inputs, '-o', out, '--model', model);
    expect(r.code).toBe(1);
    expect(r.out).toBe(`3 restored, 0 skipped, 1 failed; output in ${out}`);
    expect(r.err).toMatch(/corrupt\.jpg: failed: /);
    expect(r.err).toMatch(/big\.jpg → .*big\.png/);
    expect(r.err.split('\n').at(-1)).toMatch(/^codiff: 1 of 4 files failed: .*corrupt\.jpg$/);
    const png = (name: string) => PNG.sync.read(readFileSync(join(out, name)));
    const big = png('big.png');
    expect([big.width, big.height]).toEqual([1024, 768]);
    const grey = PNG.sync.read(readFileSync(join(out, 'sub', 'grey.png')), { skipRescale: true });
    expect([grey.width, grey.height, grey.colorType]).toEqual([512, 512, 0]);
    expect(existsSync(join(out, 'lena.png'))).toBe(true);
    expect(existsSync(join(out, 'corrupt.png'))).toBe(false);
    // --skip-existing resumes: the three done are left alone.
    const mtime = statSync(join(out, 'big.png')).mtimeMs;
    const again = await codiff('restore', inputs, '-o', out, '--model', model, '--skip-existing');
    expect(again.out).toBe(`0 restored, 3 skipped, 1 failed; output in ${out}`);
    expect(statSync(join(out, 'big.png')).mtimeMs).toBe(mtime);
  });

  it('never writes onto an input, and a single file can go to a named PNG', async () => {
    const lena = join(inputs, 'lena.png');
    const before = readFileSync(lena);
    const r = await codiff('restore', lena, '-o', inputs, '--model', model);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/lena\.png: failed: .*is also an input/);
    expect(readFileSync(lena)).toEqual(before);
    const named = join(dir, 'named.png');
    expect((await codiff('restore', join(inputs, 'sub', 'grey.jpg'), '-o', named, '--model', model, '--color', 'none')).code).toBe(0);
    expect(existsSync(named)).toBe(true);
  });

  it('bad arguments and model folders are one clear line each', async () => {
    expect((await codiff('restore', inputs, '-o', join(dir, 'x'), '--model', dir)).err).toMatch(/is not a CODiff model folder: missing unet\/config\.json; vae\/config\.json; codiff\.safetensors or codiff\.pkl or model\.pkl; cave\.safetensors or cave\.pth$/);
    expect((await codiff('restore', join(dir, 'nope.jpg'), '-o', join(dir, 'x'), '--model', model)).err).toBe(`codiff: ${join(dir, 'nope.jpg')}: no such file or folder`);
    expect((await codiff('restore', inputs, '-o', join(dir, 'x'), '--model', model, '--color', 'sepia')).err).toBe('codiff: --color must be adain, wavelet or none (got sepia)');
    writeFileSync(join(dir, 'a.jpg'), readFileSync(join(inputs, 'big.jpg')));
    mkdirSync(join(dir, 'twin'), { recursive: true });
    writeFileSync(join(dir, 'twin', 'a.png'), readFileSync(join(inputs, 'lena.png')));
    expect((await codiff('restore', join(dir, 'a.jpg'), join(dir, 'twin', 'a.png'), '-o', join(dir, 'x'), '--model', model)).err).toMatch(/would both be written to .*a\.png; restore them into different folders/);
  });

  it('convert-weights turns the official model.pkl into safetensors that restore the same image', async () => {
    const converted = join(dir, 'model-st');
    mkdirSync(converted);
    for (const f of ['unet', 'vae']) {
      mkdirSync(join(converted, f));
      for (const name of ['config.json', 'diffusion_pytorch_model.safetensors']) copyFileSync(join(model, f, name), join(converted, f, name));
    }
    copyFileSync(join(model, 'cave.pth'), join(converted, 'cave.pth'));
    const r = await codiff('convert-weights', join(model, 'codiff.pkl'), join(converted, 'codiff.safetensors'));
    expect(r.out).toMatch(/564 tensors \(F32\)/);
    const grey = join(inputs, 'sub', 'grey.jpg');
    const [a, b] = [join(dir, 'from-pkl.png'), join(dir, 'from-safetensors.png')];
    expect((await codiff('restore', grey, '-o', a, '--model', model)).code).toBe(0);
    expect((await codiff('restore', grey, '-o', b, '--model', converted)).code).toBe(0);
    expect(readFileSync(b)).toEqual(readFileSync(a));
    expect((await codiff('convert-weights', join(model, 'codiff.pkl'), join(dir, 'part.safetensors'), '--only', 'proj.')).err).toMatch(/is a CODiff checkpoint: convert it whole \(without --only\)$/);
  });
});

describe('codiff restore without --model: codiff-lite, which ships with codiff', () => {
  it('restores a grey and a colour JPEG to PNGs closer to the originals than the JPEGs', async () => {
    const out = join(dir, 'lite');
    const colour = join(dir, 'lite-in', 'kodim07-q10.jpg');
    mkdirSync(join(dir, 'lite-in'), { recursive: true });
    const kodak = readPngRgb(sharedPhotos('test', 'Kodak-nonLIVE1', 'kodim07.png'));
    writeFileSync(colour, encodeJpeg(kodak, { quality: 10 }));
    const r = await codiff('restore', colour, join(inputs, 'sub', 'grey.jpg'), '-o', out);
    expect(r.code).toBe(0);
    const boats = decodeImage(readFileSync(sharedPhotos('test', 'Classic5', 'boats.png')));
    for (const [original, jpeg, png] of [
      [kodak, colour, join(out, 'kodim07-q10.png')],
      [{ ...boats, channels: 1 as const }, join(inputs, 'sub', 'grey.jpg'), join(out, 'grey.png')],
    ] as const) {
      const restored = decodeImage(readFileSync(png));
      expect(restored.channels).toBe(original.channels);
      expect(psnr(original, restored, { on: 'y8' })).toBeGreaterThan(psnr(original, decodeImage(readFileSync(jpeg)), { on: 'y8' }));
    }
    // --no-deblock: the model's own output, which codiff-lite's default then smooths on the JPEG file's grid.
    const raw = join(dir, 'lite-raw.png');
    expect((await codiff('restore', colour, '-o', raw, '--no-deblock')).code).toBe(0);
    const unsmoothed = decodeImage(readFileSync(raw));
    const smoothed = smoothBlockEdges(unsmoothed as Pixels);
    expect(smoothed.strength).toBeGreaterThan(0);
    expect(decodeImage(readFileSync(join(out, 'kodim07-q10.png'))).data).toEqual(smoothed.image.data);
    // --post-filter: then codiff-lite's luma post-filter, and the smoothing again.
    const filtered = join(dir, 'lite-filtered.png');
    expect((await codiff('restore', colour, '-o', filtered, '--post-filter')).code).toBe(0);
    const postFilter = await lumaPostFilterFromBytes(readFileSync(join(liteModelDir(), POST_FILTER_FILE)));
    const decodedJpeg = decodeImage(readFileSync(colour)) as Pixels;
    expect(decodeImage(readFileSync(filtered)).data).toEqual(smoothBlockEdges(postFilter.apply(smoothed.image, decodedJpeg)).image.data);
    expect((await codiff('restore', colour, '-o', filtered, '--post-filter', '--no-deblock')).err).toMatch(/^codiff: --post-filter runs after the block-edge smoothing, which is off here: add --deblock$/);
    expect((await codiff('restore', colour, '-o', filtered, '--post-filter', '--model', model)).err).toMatch(/^codiff: --post-filter runs after the block-edge smoothing, which is off here/);
    expect((await codiff('restore', colour, '-o', filtered, '--post-filter', '--deblock', '--model', model)).err).toMatch(/^codiff: --post-filter: .*model has no postfilter\.safetensors \(codiff train postfilter fits one\)$/);

    // A PNG cropped by 3 rows and 5 columns from the decoded JPEG: --grid 5,3 smooths on the JPEG's grid there.
    const cropped = join(dir, 'lite-in', 'cropped.png');
    writeFileSync(cropped, encodePng(crop(decodeImage(readFileSync(colour)), 5, 3, 320, 240)));
    const [gridded, croppedRaw] = [join(dir, 'cropped-grid.png'), join(dir, 'cropped-raw.png')];
    expect((await codiff('restore', cropped, '-o', gridded, '--grid', '5,3')).code).toBe(0);
    expect((await codiff('restore', cropped, '-o', croppedRaw, '--no-deblock')).code).toBe(0);
    const onGrid = smoothBlockEdges(decodeImage(readFileSync(croppedRaw)) as Pixels, { top: 5, left: 3 });
    expect(onGrid.strength).toBeGreaterThan(0);
    expect(decodeImage(readFileSync(gridded)).data).toEqual(onGrid.image.data);
    // A grid with nothing to place, or outside 0..7, is named before any work.
    expect((await codiff('restore', cropped, '-o', gridded, '--grid', '5,3', '--no-deblock')).err).toMatch(/--grid places the block-edge smoothing, which is off here: add --deblock/);
    expect((await codiff('restore', cropped, '-o', gridded, '--grid', '5,3', '--model', model)).err).toMatch(/--grid places the block-edge smoothing, which is off here/);
    expect((await codiff('restore', cropped, '-o', gridded, '--grid', '8,0')).err).toMatch(/--grid takes two integers 0\.\.7: rows,cols/);
  });
});


describe('codiff train postfilter', () => {
  it('fits a copy of codiff-lite’s filter to a photo folder and writes it where restore finds it; bad input is one line', async () => {
    // codiff-lite's folder without its filter, and two 96² crops of validation photos.
    const lite = join(dir, 'lite-copy');
    cpSync(liteModelDir(), lite, { recursive: true });
    rmSync(join(lite, POST_FILTER_FILE));
    const photos = join(dir, 'pf-photos');
    mkdirSync(photos);
    for (const name of ['val20_001.png', 'val20_002.png']) writeFileSync(join(photos, name), encodePng(crop(decodeImage(readFileSync(sharedPhotos('val', name))), 0, 0, 96, 96)));
    const r = await codiff('train', 'postfilter', '--model', lite, '--data', photos, '--qf', '10,30');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`^fitted on 2 photos \\(${2 * 2 * 96 * 96} pixels\\) in \\d+ s on wasm; wrote ${join(lite, POST_FILTER_FILE).replace(/[.\\/]/g, '\\$&')}$`));
    const filter = await lumaPostFilterFromBytes(readFileSync(join(lite, POST_FILTER_FILE)));
    expect(filter.provenance).toMatchObject({ photos: '2', every: '1', qualities: '10,30', samples: String(2 * 2 * 96 * 96) });
    // 36,864 pixels over 1,536 classes: none has the 700 a class needs, so this filter corrects nothing.
    expect(filter.provenance.classes_fitted).toBe('0');
    expect(r.err).toMatch(/1536 of 1536 classes \(in the stage with the fewest\) had too few pixels to fit and correct nothing: more photos fit more of them/);
    // restore --post-filter finds it there: a zero filter, so the output is the default restore's.
    const [plain, filtered] = [join(dir, 'pf-plain.png'), join(dir, 'pf-filtered.png')];
    expect((await codiff('restore', join(photos, 'val20_001.png'), '-o', plain, '--model', lite)).code).toBe(0);
    expect((await codiff('restore', join(photos, 'val20_001.png'), '-o', filtered, '--model', lite, '--post-filter')).code).toBe(0);
    expect(readFileSync(filtered).equals(readFileSync(plain))).toBe(true);

    expect((await codiff('train', 'postfilter', '--model', lite, '--data', photos, '--every', '0')).err).toMatch(/--every/);
    expect((await codiff('train', 'postfilter', '--model', lite, '--data', join(dir, 'nowhere'))).err).toMatch(/^codiff: .*nowhere: no such folder$/);
    expect((await codiff('train', 'postfilter', '--model', model, '--data', photos, '-o', join(dir, 'x.safetensors'))).err).toMatch(
      /^codiff: the luma post-filter follows the block-edge smoothing of a model on the pixel-unshuffle stand-in \(codiff-lite\); an SD-based CODiff has neither$/,
    );
    expect(existsSync(join(dir, 'x.safetensors'))).toBe(false);
  }, 300_000);
});
