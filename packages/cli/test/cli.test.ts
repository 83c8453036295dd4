import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJpeg, readJpegInfo } from '@codiff/jpeg-codec';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { codiff } from './support.js';
import { startBackend } from '../src/backend.js';
import { stopOnSignals } from '../src/train.js';
import { bytesSource, SafetensorsFile, writeSafetensors } from '@codiff/nn';
import { golden, goldenJson, sharedPhotos } from '../../../test-support/golden.js';
import { flatPng } from '../../../test-support/hostile-images.js';

const here = dirname(fileURLToPath(import.meta.url));
// Commands run in this process here: one wasm thread (multi-threaded wasm starts in its own processes, as the
// built binary's tests and @codiff/nn's thread test run it).
process.env.CODIFF_WASM_THREADS = '1';
const JPEG_DIR = golden('jpeg');
const BIN = resolve(here, '../dist/bin.js');


let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'codiff-cli-'));
});

describe('codiff degrade', () => {
  it('writes the same JPEG bytes as PIL for a golden image', async () => {
    for (const q of [10, 75]) {
      const out = join(dir, `natural_q${q}.jpg`);
      const r = await codiff('degrade', join(JPEG_DIR, 'images/natural_w128_h128.png'), '-q', String(q), '-o', out);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`128×128, q${q}, \\d+ JPEG bytes, PSNR \\d+\\.\\d+ dB`));
      expect(readFileSync(out)).toEqual(readFileSync(join(JPEG_DIR, `encoded/natural_w128_h128/pil_q${q}.jpg`)));
    }
  });

  it('double compression with a non-aligned shift, written as PNG, equals the PIL case', async () => {
    const out = join(dir, 'double.png');
    const r = await codiff('degrade', join(JPEG_DIR, 'images/odd_w37_h53.png'), '-q', '5', '--double', '95', '--shift', '4', '-o', out);
    expect(r.code).toBe(0);
    const ours = PNG.sync.read(readFileSync(out));
    const ref = PNG.sync.read(readFileSync(join(JPEG_DIR, 'double/odd_w37_h53/pil_q5_q95_crop4.png')));
    expect([ours.width, ours.height]).toEqual([33, 49]);
    expect(ours.data).toEqual(ref.data);
  });

  it('accepts JPEG input and entropy options that keep the pixels', async () => {
    const src = join(JPEG_DIR, 'encoded/grad_noise_w64_h48/pil_q90.jpg');
    const plain = join(dir, 'plain.jpg');
    const tuned = join(dir, 'tuned.jpg');
    expect((await codiff('degrade', src, '-q', '40', '-o', plain)).code).toBe(0);
    expect((await codiff('degrade', src, '-q', '40', '--optimize', '--restart', '2', '-o', tuned)).code).toBe(0);
    const tunedBytes = new Uint8Array(readFileSync(tuned));
    expect(readJpegInfo(tunedBytes).restartInterval).toBe(2);
    expect(decodeJpeg(tunedBytes).data).toEqual(decodeJpeg(new Uint8Array(readFileSync(plain))).data);
  });

  it('fails with one clear line on bad input', async () => {
    const garbage = join(dir, 'garbage.png');
    writeFileSync(garbage, 'hello');
    const cases: [string[], RegExp][] = [
      [['degrade', join(dir, 'missing.png'), '-q', '10', '-o', join(dir, 'x.jpg')], /missing\.png: no such file or folder$/],
      [['degrade', garbage, '-q', '10', '-o', join(dir, 'x.jpg')], /not a PNG or JPEG/],
      [['degrade', garbage, '-q', '0', '-o', join(dir, 'x.jpg')], /quality must be an integer 1\.\.100/],
      [['degrade', garbage, '-q', '10', '-o', join(dir, 'x.gif')], /must end in \.jpg, \.jpeg or \.png/],
      [['degrade', join(JPEG_DIR, 'images/odd_w37_h53.png'), '-q', '10', '--shift', '4', '-o', join(dir, 'x.jpg')], /--shift needs --double/],
      [['degrade', join(JPEG_DIR, 'images/odd_w37_h53.png'), '-q', '10', '-s', '4:2:1', '-o', join(dir, 'x.jpg')], /--subsampling must be one of/],
    ];
    for (const [argv, message] of cases) {
      const r = await codiff(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err).toMatch(message);
      expect(r.err).not.toMatch(/\n\s+at /); // no stack trace
    }
  });
});

describe('stopping a training run from the terminal', () => {
  it('the first signal asks for a checkpoint after the step; a second exits at once with 130; release unhooks', () => {
    const signals = new EventEmitter();
    const lines: string[] = [];
    const exits: number[] = [];
    const stop = stopOnSignals((line) => lines.push(line), (code) => exits.push(code), signals);
    signals.emit('SIGINT');
    expect([stop.signal.aborted, exits]).toEqual([true, []]);
    signals.emit('SIGTERM');
    expect(exits).toEqual([130]);
    expect(lines).toEqual([
      'SIGINT: finishing this step and writing a checkpoint (resume with --resume; SIGINT again stops at once)',
      'SIGTERM again: stopping now, without this step; --resume continues from the last checkpoint',
    ]);
    stop.release();
    expect([signals.listenerCount('SIGINT'), signals.listenerCount('SIGTERM')]).toEqual([0, 0]);
  });
});

describe('codiff jpeg-info', () => {
  it('prints size, subsampling, tables and the exact quality', async () => {
    const r = await codiff('jpeg-info', join(JPEG_DIR, 'encoded/odd_w37_h53/pil_q20.jpg'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/size:\s+37×53/);
    expect(r.out).toMatch(/frame:\s+baseline/);
    expect(r.out).toMatch(/subsampling:\s+4:2:0/);
    expect(r.out).toMatch(/quality:\s+20 \(exact IJG tables\)/);
    expect(r.out).toMatch(/quantisation table 0 \(8-bit\):\n\s+40\s+28\s+25\s+40/);
  });

  it('--json is machine-readable', async () => {
    const r = await codiff('jpeg-info', '--json', join(JPEG_DIR, 'encoded/natural_w128_h128/cjpeg_q5.jpg'));
    const info = JSON.parse(r.out);
    expect(info.frame).toBe('extended');
    expect(info.quality).toEqual({ quality: 5, exact: true });
    expect(info.quantTables[0]).toHaveLength(64);
  });

  it('reports a corrupt file as a typed error', async () => {
    const bad = join(dir, 'bad.jpg');
    writeFileSync(bad, Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
    const r = await codiff('jpeg-info', bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^codiff: CORRUPT: /);
  });
});

describe('the built codiff binary', () => {
  it('runs as a real process with exit codes', () => {
    const out = join(dir, 'bin.jpg');
    const stdout = execFileSync(process.execPath, [BIN, 'degrade', join(JPEG_DIR, 'images/grad_noise_w64_h48.png'), '-q', '50', '-o', out], { encoding: 'utf8' });
    expect(stdout).toMatch(/64×48, q50/);
    expect(readFileSync(out)).toEqual(readFileSync(join(JPEG_DIR, 'encoded/grad_noise_w64_h48/opencv_q50.jpg')));
    const failed = spawnSync(process.execPath, [BIN, 'jpeg-info', join(dir, 'nope.jpg')], { encoding: 'utf8' });
    expect(failed.status).toBe(1);
    expect(failed.stderr.trim()).toMatch(/^codiff: .*nope\.jpg: no such file or folder$/);
    const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/degrade/);
  });

  it('serve: prints the web page address, serves the page with its default model, stops on SIGINT', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let stdout = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d;
        const m = /^codiff web page: (http:\/\/127\.0\.0\.1:\d+\/) {2}\(Ctrl-C stops\)$/m.exec(stdout);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited (${code}) before printing its address: ${stdout}`)));
    });
    expect(await (await fetch(url)).text()).toContain('<title>codiff');
    expect((await fetch(new URL('models/codiff-lite/manifest.json', url))).status).toBe(200);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    const invalid = spawnSync(process.execPath, [BIN, 'serve', '--port', 'x'], { encoding: 'utf8' });
    expect(invalid.status).toBe(1);
    expect(invalid.stderr.trim()).toBe("codiff: option '--port <n>' argument 'x' is invalid. port must be an integer 0..65535");
  });

  it('computes LPIPS and DISTS in plain Node (TF.js wasm)', () => {
    const images = golden('dists-lpips', 'images');
    const stdout = execFileSync(process.execPath, [BIN, 'metrics', join(images, 's64_ref.png'), join(images, 's64_blur3x3.png'), '--vgg', golden('dists-lpips')], { encoding: 'utf8' });
    const pair = goldenJson('dists-lpips', 'manifest.json').cases.s64.pairs[1];
    const value = (name: string) => Number(new RegExp(`${name}:\\s+([0-9.]+)`).exec(stdout)?.[1]);
    expect(Math.abs(value('LPIPS') - pair.lpips)).toBeLessThanOrEqual(2e-6);
    expect(Math.abs(value('DISTS') - pair.dists)).toBeLessThanOrEqual(1e-5);
  });
});

describe('codiff metrics', () => {
  const images = golden('dists-lpips', 'images');
  const vectors = JSON.parse(readFileSync(resolve(here, '../../metrics/test/skimage-vectors.json'), 'utf8')).rows as {
    reference: string;
    test: string;
    crop: number;
    psnr_y: number;
    psnr_rgb: number;
    ssim_y: number;
  }[];

  it('prints PSNR and SSIM equal to scikit-image’s', async () => {
    for (const crop of [0, 4]) {
      const row = vectors.find((v) => v.test.endsWith('s64_jpeg_q15.png') && v.crop === crop)!;
      const r = await codiff('metrics', golden(row.reference), golden(row.test), '--crop', String(crop), '--json');
      expect(r.code, r.err).toBe(0);
      const m = JSON.parse(r.out);
      expect(m.psnrY).toBeCloseTo(row.psnr_y, 9);
      expect(m.psnrRgb).toBeCloseTo(row.psnr_rgb, 9);
      expect(m.ssimY).toBeCloseTo(row.ssim_y, 9);
      expect(m.lpips).toBeUndefined();
    }
  });

  it('with a weights folder adds LPIPS and DISTS equal to the reference implementations', async () => {
    const pair = goldenJson('dists-lpips', 'manifest.json').cases.s64.pairs[0];
    const r = await codiff('metrics', join(images, 's64_ref.png'), join(images, 's64_noise.png'), '--vgg', golden('dists-lpips'), '--backend', 'wasm', '--json');
    expect(r.code, r.err).toBe(0);
    const m = JSON.parse(r.out);
    expect(Math.abs(m.dists - pair.dists)).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(m.lpips - pair.lpips)).toBeLessThanOrEqual(1e-6 + 1e-4 * pair.lpips);
  });

  it('reports bad input clearly', async () => {
    const ref = join(images, 's64_ref.png');
    const cases: [string[], RegExp][] = [
      [[ref, join(images, 's96x128_ref.png')], /image sizes differ: 64×64 vs 128×96/],
      [[ref, ref, '--vgg', golden('dists-lpips', 'vgg16.safetensors')], /give --dists and\/or --lpips/],
      [[ref, ref, '--lpips', 'x.safetensors'], /need --vgg/],
      [[ref, ref, '--crop', '30'], /SSIM needs at least 11×11 pixels after cropping/],
      [[ref, ref, '--vgg', golden('dists-lpips', 'vgg16.safetensors'), '--dists', golden('dists-lpips', 'lpips_vgg_v0.1.safetensors')], /lpips_vgg_v0\.1\.safetensors: .*unexpected keys: lin0/],
    ];
    for (const [args, message] of cases) {
      const r = await codiff('metrics', ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err).toMatch(message);
    }
  });
});

describe('codiff convert-weights', () => {
  const fixtures = resolve(here, '../../nn/test/fixtures/torch');

  it('converts a torch.save file to safetensors, optionally filtered and in F16', async () => {
    const out = join(dir, 'converted.safetensors');
    const r = await codiff('convert-weights', join(fixtures, 'state_legacy.pth'), out, '--only', 'features.', 'norm.', '--dtype', 'f16');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/5 tensors \(F16\), \d+ bytes; 4 tensors left out by --only/);
    const file = await SafetensorsFile.open(bytesSource(new Uint8Array(readFileSync(out)), out));
    const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')).state;
    expect([...file.tensors.keys()].sort()).toEqual(['features.0.bias', 'features.0.weight', 'norm.num_batches_tracked', 'norm.running_var', 'norm.weight']);
    expect(file.tensors.get('features.0.weight')!.dtype).toBe('F16');
    const weight = await file.read('features.0.weight');
    expect(weight.shape).toEqual([2, 3, 3, 3]);
    weight.data.forEach((v, i) => expect(Math.abs(v - expected['features.0.weight'].data[i])).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(v))));
  });

  it('says which tensors stay F32 because F16 cannot hold them', async () => {
    const input = join(dir, 'wide.safetensors');
    writeFileSync(input, writeSafetensors({ small: { shape: [2], data: new Float32Array([1, -2]) }, wide: { shape: [1], data: new Float32Array([1.26e5]) } }));
    const out = join(dir, 'wide-f16.safetensors');
    const r = await codiff('convert-weights', input, out, '--dtype', 'F16');
    expect(r.out, r.err).toMatch(/2 tensors \(1 F16, 1 F32: beyond F16's range\)/);
    const file = await SafetensorsFile.open(bytesSource(new Uint8Array(readFileSync(out)), out));
    expect(file.tensors.get('wide')!.dtype).toBe('F32');
  });

  it('refuses a pickle that would run code, and non-checkpoints', async () => {
    const evil = await codiff('convert-weights', join(fixtures, 'malicious.pkl'), join(dir, 'evil.safetensors'));
    expect(evil.code).toBe(1);
    expect(evil.err).toMatch(/posix\.system.*refusing to run pickle code/);
    const png = await codiff('convert-weights', join(JPEG_DIR, 'images/odd_w37_h53.png'), join(dir, 'png.safetensors'));
    expect(png.err).toMatch(/not a PyTorch checkpoint/);
    const ext = await codiff('convert-weights', join(fixtures, 'state_zip.pth'), join(dir, 'out.bin'));
    expect(ext.err).toMatch(/must be a \.safetensors file/);
  });
});

describe('codiff convert-weights on the official CaVE checkpoint', () => {
  it('turns the legacy G.pth into safetensors that load as the same CaVE', async () => {
    const out = join(dir, 'cave.safetensors');
    const r = await codiff('convert-weights', golden('cave', 'G.pth'), out);
    expect(r.out).toMatch(/184 tensors \(F32\)/);
    await startBackend();
    const { loadCave } = await import('@codiff/cave/node');
    const [a, b] = await Promise.all([loadCave(out), loadCave(golden('cave', 'G.pth'))]);
    const [sa, sb] = await Promise.all([a.stateDict(), b.stateDict()]);
    for (const [k, t] of sb) expect(sa.get(k)!.data, k).toEqual(t.data);
    a.dispose();
    b.dispose();
    // safetensors in, F16 out: half the bytes, values rounded to half precision.
    const half = join(dir, 'cave-f16.safetensors');
    expect((await codiff('convert-weights', out, half, '--dtype', 'F16')).out).toMatch(/184 tensors \(F16\)/);
    const file = await SafetensorsFile.open(bytesSource(new Uint8Array(readFileSync(half)), half));
    expect(file.tensors.get('m_head.weight')!.dtype).toBe('F16');
    expect(readFileSync(half).length).toBeLessThan(0.6 * readFileSync(out).length);
    // A safetensors input keeps its metadata (here the QF head's training patch a stage-1 run records).
    const { saveCave } = await import('@codiff/cave/node');
    const trained = await loadCave(out, { qualityPatch: 64 });
    await saveCave(trained, join(dir, 'cave-patch.safetensors'));
    trained.dispose();
    await codiff('convert-weights', join(dir, 'cave-patch.safetensors'), join(dir, 'cave-patch-f16.safetensors'), '--dtype', 'F16');
    const reloaded = await loadCave(join(dir, 'cave-patch-f16.safetensors'));
    expect(reloaded.config.qualityPatch).toBe(64);
    reloaded.dispose();
  });
});

describe('codiff quality and cave-plot (with the golden tiny CaVE as --model)', () => {
  const model = golden('cave', 'weights.safetensors');

  it('prints the QF of the tables beside CaVE’s estimate, which equals the library’s', async () => {
    const jpg = join(dir, 'q37.jpg');
    await codiff('degrade', sharedPhotos('test', 'Kodak-nonLIVE1', 'kodim07.png'), '-q', '37', '-o', jpg);
    const grey = join(dir, 'grey-q80.jpg');
    await codiff('degrade', sharedPhotos('test', 'Classic5', 'boats.png'), '-q', '80', '-o', grey);
    const png = sharedPhotos('test', 'Classic5', 'lena.png');
    const r = await codiff('quality', jpg, grey, png, '--model', model, '--json');
    expect(r.err).toBe('');
    const rows = JSON.parse(r.out) as { file: string; tables: { quality: number; exact: boolean } | null; cave: number }[];
    expect(rows.map((x) => x.tables)).toEqual([{ quality: 37, exact: true }, { quality: 80, exact: true }, null]);

    const tf = await import('@tensorflow/tfjs-core');
    const { loadCave } = await import('@codiff/cave/node');
    const cave = await loadCave(model);
    const pixels = decodeJpeg(readFileSync(jpg));
    const x = tf.tidy(() => tf.div(tf.tensor4d(pixels.data, [1, pixels.height, pixels.width, 3], 'float32'), 255) as import('@tensorflow/tfjs-core').Tensor4D);
    expect(rows[0].cave).toBeCloseTo(await cave.estimateQuality(x), 3);
    // --qf-patch: the QF head averaged over 64² tiles, as the library's estimate with that training patch.
    const tiled = await loadCave(model, { qualityPatch: 64 });
    const [perTile] = JSON.parse((await codiff('quality', jpg, '--model', model, '--qf-patch', '64', '--json')).out) as { cave: number }[];
    expect(perTile.cave).toBeCloseTo(await tiled.estimateQuality(x), 3);
    expect(Math.abs(perTile.cave - rows[0].cave)).toBeGreaterThan(1e-3);
    expect((await codiff('quality', jpg, '--model', model, '--qf-patch', '60')).err).toMatch(/qualityPatch must be a multiple of 8 of at least 32 \(got 60\)/);
    tf.dispose(x);
    cave.dispose();
    tiled.dispose();

    const text = await codiff('quality', jpg, png, '--model', model);
    expect(text.out.split('\n')).toEqual([
      expect.stringMatching(/q37\.jpg: tables QF 37; CaVE \d+\.\d$/),
      expect.stringMatching(/lena\.png: tables none \(not a JPEG\); CaVE \d+\.\d$/),
    ]);
  });

  it('without --model, reads the quality with the CaVE codiff-lite ships (trained QF head, its 64² tiles)', async () => {
    const r = await codiff('quality', join(dir, 'q37.jpg'), join(dir, 'grey-q80.jpg'), '--json');
    expect(r.err).toBe('');
    const rows = JSON.parse(r.out) as { tables: { quality: number }; cave: number }[];
    expect(rows.map((row) => row.tables.quality)).toEqual([37, 80]);
    // The QF head of the CaVE shipped before answered about 41 for both.
    for (const row of rows) expect(Math.abs(row.cave - row.tables.quality), JSON.stringify(row)).toBeLessThan(8);
  });

  it('reports a missing model or file in one line', async () => {
    const r = await codiff('quality', join(dir, 'q37.jpg'), '--model', join(dir, 'none.safetensors'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^codiff: .*none\.safetensors: no such file$/);
    const small = join(dir, 'small.png');
    writeFileSync(small, flatPng(16, 16));
    expect((await codiff('quality', small, '--model', model)).err).toMatch(/^codiff: .*small\.png: 16×16 is too small for CaVE \(at least 25×25\)$/);
  });

  it('cave-plot draws the embeddings of each photo at each QF and prints the estimate’s error per QF', async () => {
    const out = join(dir, 'cave-map.png');
    const r = await codiff('cave-plot', '--data', sharedPhotos('test', 'Classic5'), '--qf', '5,30,90', '-o', out, '--model', model);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe('QF  | mean estimate | MAE');
    expect(lines.slice(1, 4).map((l) => Number(l.split('|')[0]))).toEqual([5, 30, 90]);
    expect(lines[4]).toBe(`5 photos; map in ${out}`);
    const png = PNG.sync.read(readFileSync(out));
    expect(png.width).toBeGreaterThan(400);
    const svg = join(dir, 'cave-map.svg');
    await codiff('cave-plot', '--data', sharedPhotos('test', 'Classic5'), '--qf', '10,50', '-o', svg, '--model', model);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg[^]*CaVE embeddings of 5 photos × 2 QFs/);
    expect((await codiff('cave-plot', '--data', dir, '-o', join(dir, 'map.gif'), '--model', model)).err).toMatch(/the plot is written as \.png or \.svg/);
  });
});

describe('codiff eval', () => {
  const photos = sharedPhotos('test');

  it('measures a command restorer against the JPEG input and writes the report', async () => {
    const data = join(dir, 'eval-set');
    execFileSync('mkdir', ['-p', data]);
    execFileSync('cp', [join(photos, 'Kodak-nonLIVE1/kodim07.png'), join(photos, 'Classic5/lena.png'), data]);
    const out = join(dir, 'eval-report');
    const r = await codiff('eval', '--data', data, '--qf', '10,30', '--restorer', 'cp {in} {out}', '--name', 'identity', '-o', out, '--json');
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.methods).toEqual(['identity']);
    expect(report.summary.map((s: { qf: number; method: string; images: number }) => [s.qf, s.method, s.images])).toEqual([
      [10, 'jpeg', 2],
      [10, 'identity', 2],
      [30, 'jpeg', 2],
      [30, 'identity', 2],
    ]);
    const jpeg10 = report.summary[0];
    expect(report.summary[1].psnr).toBe(jpeg10.psnr);
    expect(jpeg10.psnrB).toBeLessThan(jpeg10.psnr);
    expect(readFileSync(join(out, 'results.csv'), 'utf8').split('\n')[0]).toBe('set,image,qf,method,psnr,ssim,psnrB,bpp,seconds');
    expect(readFileSync(join(out, 'contact-qf30.png')).subarray(1, 4).toString()).toBe('PNG');
  });

  it('measures codiff-lite in-process (--model lite): better than the JPEG at QF 10', async () => {
    const data = join(dir, 'eval-lite');
    execFileSync('mkdir', ['-p', data]);
    execFileSync('cp', [join(photos, 'Classic5/boats.png'), data]);
    const r = await codiff('eval', '--data', data, '--qf', '10', '--protocol', 'full', '--model', 'lite', '--json');
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.methods).toEqual(['codiff-lite']);
    const [jpeg, lite] = report.summary;
    expect([jpeg.method, lite.method]).toEqual(['jpeg', 'codiff-lite']);
    expect(lite.psnr).toBeGreaterThan(jpeg.psnr);
  });

  it('reports bad options and missing tools in one line', async () => {
    const cases: [string[], RegExp][] = [
      [['--data', photos, '--qf', '10', '--model', 'lite', '--restorer', 'cp {in} {out}'], /give one method under test: --restorer or --model/],
      [['--data', photos, '--qf', '10', '--model', 'lite', '--color', 'sepia'], /--color must be adain, wavelet or none \(got sepia\)/],
      [['--data', photos, '--qf', '10,0'], /--qf must be an integer 1\.\.100/],
      [['--data', photos, '--qf', '10', '--protocol', 'mine'], /--protocol must be 'codiff' or 'full'/],
      [['--data', photos, '--qf', '10', '--compare', 'dncnn3'], /--compare dncnn3 needs --weights/],
      [['--data', photos, '--qf', '10', '--compare', 'bogus'], /--compare takes jpegqs, dncnn3 or name=command/],
      [['--data', join(dir, 'no-such-folder'), '--qf', '10'], /no-such-folder: no such folder/],
      [['--data', photos, '--qf', '10', '--restorer', 'cp {in}'], /must contain \{in\} and \{out\}/],
    ];
    for (const [args, message] of cases) {
      const r = await codiff('eval', ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err).toMatch(message);
      expect(r.err.split('\n')).toHaveLength(1);
    }
  });
});
