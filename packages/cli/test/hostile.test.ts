// Hostile and unlucky input, as a new user meets it: each observation of the hostile-input issue is a case here,
// run against the built binary in a child process whose time and peak memory are bounded.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng } from '@codiff/image-io';
import { NnError } from '@codiff/nn';
import { errorLine } from '../src/program.js';
import { golden } from '../../../test-support/golden.js';
import { flatPng, jpegHeaderOnly, pngHeaderOnly } from '../../../test-support/hostile-images.js';
import { legacyCheckpoint, Pickle, sharedDictBomb, strideZeroCheckpoint } from '../../../test-support/torch-pickle.js';

const here = dirname(fileURLToPath(import.meta.url));
const MEASURED = join(here, 'run-measured.mjs');
const GB = 2 ** 30;

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'codiff-hostile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, bytes?: Uint8Array | string) => {
  const path = join(dir, name);
  if (bytes !== undefined) writeFileSync(path, bytes);
  return path;
};

interface Measured {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  rssBytes: number;
}

/** Run the built `codiff` with these arguments; its exit code, output, wall time and peak RSS. */
function codiff(args: string[], env: Record<string, string> = {}): Measured {
  const measure = join(dir, `rss-${Math.random().toString(36).slice(2)}`);
  const start = performance.now();
  const r = spawnSync(process.execPath, [MEASURED, ...args], { encoding: 'utf8', env: { ...process.env, ...env, CODIFF_MEASURE: measure }, timeout: 120_000 });
  const seconds = (performance.now() - start) / 1000;
  const rssBytes = existsSync(measure) ? Number(readFileSync(measure, 'utf8')) * 1024 : NaN;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds, rssBytes };
}

/** A refusal: exit 1, exactly one line on stderr matching `message`, within the suite's bounds. */
function expectRefusal(r: Measured, message: RegExp, bounds = { seconds: 5, rssBytes: 1 * GB }) {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr.trimEnd()).toMatch(message);
  expect(r.seconds).toBeLessThan(bounds.seconds);
  expect(r.rssBytes).toBeLessThan(bounds.rssBytes);
}

describe('checkpoints that would exhaust memory', () => {
  it('a ~1 KB shared-dict bomb (22 levels) is refused in well under 5 s, naming the file and the limit', () => {
    const input = file('bomb22.pth', sharedDictBomb(22));
    expect(statSync(input).size).toBeLessThan(1500);
    const r = codiff(['convert-weights', input, join(dir, 'bomb22.safetensors')]);
    expectRefusal(r, /^codiff: .*bomb22\.pth: more than 20000 tensors \(limit maxTensors\)$/);
    expect(existsSync(join(dir, 'bomb22.safetensors'))).toBe(false);
  });

  it('16 levels (65,536 tensors) too; --max-tensors raises the limit for a trusted file', () => {
    const input = file('bomb16.pth', sharedDictBomb(16));
    expectRefusal(codiff(['convert-weights', input, join(dir, 'bomb16.safetensors')]), /more than 20000 tensors/);
    const raised = codiff(['convert-weights', input, join(dir, 'bomb16.safetensors'), '--max-tensors', '70000']);
    expect(raised.code, raised.stderr).toBe(0);
    expect(raised.stdout).toMatch(/65536 tensors \(F32\)/);
  });

  it('a 501-byte stride-0 20000×20000 tensor is refused, and eight of them', () => {
    const one = file('stride0.pth', strideZeroCheckpoint(1, [20000, 20000]));
    expect(statSync(one).size).toBeLessThan(600);
    expectRefusal(codiff(['convert-weights', one, join(dir, 'stride0.safetensors')]), /stride-0 \(broadcast\) view of shape \[20000, 20000\]; refusing to expand it$/);
    const eight = file('stride0x8.pth', strideZeroCheckpoint(8, [20000, 20000]));
    expectRefusal(codiff(['convert-weights', eight, join(dir, 'stride0x8.safetensors')]), /refusing to expand it$/);
    expect(readdirSync(dir).filter((f) => f.includes('stride0') && f.endsWith('.safetensors'))).toEqual([]);
  });
});

describe('images that would exhaust memory', () => {
  it('a 20000×20000 PNG is refused from its header, before decoding', () => {
    const input = file('huge.png', pngHeaderOnly(20000, 20000));
    const r = codiff(['degrade', input, '-q', '10', '-o', join(dir, 'huge.jpg')]);
    expectRefusal(r, /huge\.png: the PNG is 20000×20000 = 400000000 pixels, over the limit of 100000000$/, { seconds: 2, rssBytes: 300e6 });
  });

  it('a 16383×16383 JPEG is refused from its SOF by default, and fails in one line when the limit is raised', () => {
    const input = file('huge.jpg', jpegHeaderOnly(16383, 16383));
    expectRefusal(codiff(['degrade', input, '-q', '10', '-o', join(dir, 'h.jpg')]), /huge\.jpg: JPEG: image is 16383×16383 = 268402689 pixels, over the limit of 100000000$/);
    const raised = codiff(['degrade', input, '-q', '10', '-o', join(dir, 'h.jpg'), '--max-pixels', '300000000']);
    expectRefusal(raised, /^codiff: .*huge\.jpg: JPEG: /, { seconds: 30, rssBytes: 3 * GB });
    expect(existsSync(join(dir, 'h.jpg'))).toBe(false);
  });

  it('a legitimate 100-megapixel PNG degrades within 3 GB', () => {
    const input = file('100mp.png', flatPng(10000, 10000));
    const r = codiff(['degrade', input, '-q', '50', '-o', join(dir, '100mp.jpg')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/10000×10000, q50/);
    expect(r.rssBytes).toBeLessThan(3 * GB);
    console.log(`degrade of a 100 MP PNG: ${r.seconds.toFixed(1)} s, peak RSS ${(r.rssBytes / 2 ** 20).toFixed(0)} MiB`);
    // metrics on two 100 MP images would take ~20 s of SSIM: the pixel limit is how a user bounds it.
    expectRefusal(codiff(['metrics', input, input, '--max-pixels', '50000000']), /100mp\.png: the PNG is 10000×10000 = 100000000 pixels, over the limit of 50000000$/);
  });

  it('metrics stays within a few bytes per pixel (two 10-megapixel PNGs under 500 MB)', () => {
    const a = file('10mp-a.png', flatPng(4000, 2500));
    const b = file('10mp-b.png', flatPng(4000, 2500, [10, 20, 30]));
    const r = codiff(['metrics', a, b, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).ssimY).toBeGreaterThan(0);
    expect(r.rssBytes).toBeLessThan(500e6);
  });
});

describe('training steps larger than the wasm heap', () => {
  it('stops with one line that names what to shrink, not a hang or a restore hint', () => {
    const photos = join(dir, 'train-photos');
    mkdirSync(photos, { recursive: true });
    file('train-photos/flat.png', flatPng(600, 600));
    // 64 crops of 512²: the lite CaVE's first activations alone are 1 GiB each.
    const lite = JSON.parse(readFileSync(join(here, '../../train/configs/stage1-lite.json'), 'utf8'));
    const config = file('stage1-huge.json', JSON.stringify({ ...lite, name: 'huge', patch: 512, batchSize: 64 }));
    // Two threads: there a failed allocation inside the module used to spin forever instead of failing.
    const r = codiff(['train', 'stage1', '--config', config, '--data', photos, '--out', join(dir, 'huge-run'), '--threads', '2', '--workers', '1']);
    expectRefusal(
      r,
      /^codiff: the wasm backend ran out of memory in a stage1 step \(its heap is 4 GiB\): give the configuration a smaller patch or batchSize \(accumulate keeps the effective batch\), or use --backend webgpu$/,
      { seconds: 90, rssBytes: 6 * GB },
    );
  });
});

describe('outputs never destroy inputs; write errors are one line', () => {
  it('degrade x.png -o x.png refuses and leaves the input as it was', () => {
    const input = file('self.png', flatPng(16, 16));
    const before = readFileSync(input);
    const r = codiff(['degrade', input, '-q', '10', '-o', input]);
    expectRefusal(r, /self\.png: is also an input \(.*self\.png\); refusing to overwrite it$/);
    expect(readFileSync(input).equals(before)).toBe(true);
    const viaDots = codiff(['convert-weights', file('w.pth', strideZeroCheckpoint(1, [2])), join(dir, '.', 'w.pth')]);
    expect(viaDots.stderr).toMatch(/must be a \.safetensors file/);
  });

  it('an existing folder, a path under a regular file: one line each', () => {
    const input = file('small.png', flatPng(16, 16));
    mkdirSync(join(dir, 'out-folder.png'));
    file('plain-file', 'x');
    expectRefusal(codiff(['degrade', input, '-q', '10', '-o', join(dir, 'out-folder.png')]), /out-folder\.png: is a folder, not a file$/);
    expectRefusal(codiff(['degrade', input, '-q', '10', '-o', join(dir, 'plain-file/x.png')]), /plain-file\/x\.png: a part of the path is a file, not a folder$/);
  });

  it('a full disk: one line, and the old output is still there', (context) => {
    const full = join(dir, 'full');
    mkdirSync(full);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full], { stdio: 'ignore' });
    } catch {
      context.skip('cannot mount a small tmpfs here (needs root)');
    }
    try {
      writeFileSync(join(full, 'out.png'), 'old');
      const input = file('noise.png', encodePng({ width: 300, height: 300, channels: 3, data: Uint8Array.from({ length: 270000 }, (_, i) => (i * 2654435761) >>> 24) }));
      const r = codiff(['degrade', input, '-q', '100', '-s', '4:4:4', '-o', join(full, 'out.jpg')]);
      expectRefusal(r, /full\/out\.jpg: no space left on the device$/);
      expect(readdirSync(full)).toEqual(['out.png']);
    } finally {
      execFileSync('umount', [full]);
    }
  });

  it('a convert-weights killed while writing leaves the existing good file in place', async () => {
    const big = new Float32Array(48e6).fill(0.5);
    const pickle = new Pickle().emptyDict().mark().str('w').tensor('0', big.length, [big.length], [1]).setItems();
    const input = file('big.pth', legacyCheckpoint(pickle, { '0': big }));
    const output = file('big.safetensors', 'the good old file');
    const child = spawn(process.execPath, [join(here, '../dist/bin.js'), 'convert-weights', input, output], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    // Kill it as soon as its temporary file appears, i.e. in the middle of writing.
    let killedMidWrite = false;
    while (child.exitCode === null) {
      if (readdirSync(dir).some((f) => f.startsWith('.big.safetensors.') && f.endsWith('.tmp'))) {
        child.kill('SIGKILL');
        killedMidWrite = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await exited;
    expect(killedMidWrite).toBe(true);
    expect(readFileSync(output, 'utf8')).toBe('the good old file');
  });
});

describe('quiet and plain', () => {
  const ref = () => file('ref.png', flatPng(32, 32));

  it('the cpu backend prints no TF.js banner', () => {
    const weights = golden('dists-lpips');
    const r = codiff(['metrics', ref(), ref(), '--vgg', weights, '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toMatch(/tfjs-node|Hi, looks like/);
  });

  it('WebGPU without an adapter is one line, no driver noise', () => {
    const weights = golden('dists-lpips');
    const r = codiff(['metrics', ref(), ref(), '--vgg', weights, '--backend', 'webgpu'], { VK_ICD_FILENAMES: join(dir, 'no-driver.json') });
    expectRefusal(r, /^codiff: backend 'webgpu' is unavailable: Dawn found no WebGPU adapter/);
  });

  it('damaged PNGs are described in plain words (not a decoder library’s internals)', () => {
    const png = Buffer.from(flatPng(64, 64));
    const cut = file('cut.png', png.subarray(0, png.length - 20));
    expectRefusal(codiff(['degrade', cut, '-q', '10', '-o', join(dir, 'cut.jpg')]), /cut\.png: the PNG data ends inside its IDAT chunk$/);
    const flipped = Buffer.from(png);
    flipped[60] ^= 0x55;
    const bad = file('bad.png', flipped);
    expectRefusal(codiff(['degrade', bad, '-q', '10', '-o', join(dir, 'bad.jpg')]), /bad\.png: the PNG is damaged \(checksum mismatch in its IDAT chunk\)$/);
  });

  it('metrics --json writes "inf" for identical images, never null', () => {
    const r = codiff(['metrics', ref(), ref(), '--json']);
    const m = JSON.parse(r.stdout);
    expect([m.psnrY, m.psnrRgb, m.ssimY]).toEqual(['inf', 'inf', 1]);
    expect(r.stdout).not.toMatch(/null/);
  });

  it('commander’s own errors are codiff one-liners', () => {
    expectRefusal(codiff(['degrade', ref(), '-q', '10', '-o', join(dir, 'x.jpg'), '--bogus']), /^codiff: unknown option '--bogus'$/);
    expectRefusal(codiff(['degrade', '-q', '10', '-o', join(dir, 'x.jpg')]), /^codiff: missing required argument 'input'$/);
    expectRefusal(codiff(['degrad']), /^codiff: unknown command 'degrad'/);
  });

  it('an unexpected error is one line, with the stack only under CODIFF_DEBUG=1', () => {
    expect(errorLine(new TypeError('x is not a function\n  at f (a.js:1)'))).toBe('codiff: unexpected error: x is not a function (set CODIFF_DEBUG=1 for details)');
    expect(errorLine(new RangeError('Array buffer allocation failed'))).toBe('codiff: out of memory (Array buffer allocation failed); try a smaller image or --max-pixels');
    expect(errorLine(new WebAssembly.RuntimeError('Aborted(). Build with -sASSERTIONS for more info.'))).toMatch(/^codiff: the wasm backend ran out of memory \(its heap is 4 GiB\): use smaller tiles/);
    expect(errorLine(new NnError('the wasm backend ran out of memory: …', 'OUT_OF_MEMORY'))).toMatch(/^codiff: the wasm backend ran out of memory \(its heap is 4 GiB\): use smaller tiles/);
  });
});
