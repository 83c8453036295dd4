import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodePng, ImageIoError } from '../src/index.js';
import { readFileBytes, readImageFile, writeFileAtomic } from '../src/node.js';

const dir = mkdtempSync(join(tmpdir(), 'codiff-image-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function failure(promise: Promise<unknown>): Promise<ImageIoError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(ImageIoError);
    return e as ImageIoError;
  }
  throw new Error('expected an ImageIoError');
}

describe('writeFileAtomic', () => {
  it('writes, replaces and creates missing folders, leaving no temporary file', async () => {
    const path = join(dir, 'new/deeper/out.bin');
    await writeFileAtomic(path, Uint8Array.of(1, 2, 3));
    await writeFileAtomic(path, Uint8Array.of(4, 5));
    expect([...readFileSync(path)]).toEqual([4, 5]);
    expect(readdirSync(join(dir, 'new/deeper'))).toEqual(['out.bin']);
  });

  it('refuses to overwrite an input: same path, another spelling, a symbolic link, a hard link', async () => {
    const input = join(dir, 'input.png');
    writeFileSync(input, 'original');
    symlinkSync(input, join(dir, 'symlink.png'));
    linkSync(input, join(dir, 'hardlink.png'));
    for (const output of [input, `${dir}/./input.png`, join(dir, 'symlink.png'), join(dir, 'hardlink.png')]) {
      const error = await failure(writeFileAtomic(output, Uint8Array.of(0), { inputs: [input] }));
      expect(error.code).toBe('OUTPUT_IS_INPUT');
      expect(error.message).toBe(`${output}: is also an input (${input}); refusing to overwrite it`);
    }
    expect(readFileSync(input, 'utf8')).toBe('original');
  });

  it('turns file-system failures into one line naming the path', async () => {
    mkdirSync(join(dir, 'a-folder'));
    writeFileSync(join(dir, 'a-file'), '');
    const cases: [string, RegExp][] = [
      [join(dir, 'a-folder'), /a-folder: is a folder, not a file$/],
      [join(dir, 'a-file/out.png'), /a-file\/out\.png: a part of the path is a file, not a folder$/],
    ];
    for (const [path, message] of cases) {
      const error = await failure(writeFileAtomic(path, Uint8Array.of(1)));
      expect(error.code).toBe('FILE_SYSTEM');
      expect(error.message).toMatch(message);
    }
  });

  const full = join(dir, 'full');
  let mounted = false;
  try {
    mkdirSync(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full], { stdio: 'ignore' });
    mounted = true;
  } catch {
    console.warn('image-io: cannot mount a small tmpfs here (needs root); the full-disk case is skipped');
  }
  afterAll(() => {
    if (mounted) execFileSync('umount', [full]);
  });

  it.skipIf(!mounted)('on a full disk: one line, the old file intact, no temporary file left', async () => {
    const path = join(full, 'out.bin');
    writeFileSync(path, 'good old content');
    const error = await failure(writeFileAtomic(path, new Uint8Array(200_000)));
    expect(error.message).toBe(`${path}: no space left on the device`);
    expect(readFileSync(path, 'utf8')).toBe('good old content');
    expect(readdirSync(full)).toEqual(['out.bin']);
  });
});

describe('readFileBytes and readImageFile', () => {
  it('name the file and the reason', async () => {
    expect((await failure(readFileBytes(join(dir, 'missing.png')))).message).toMatch(/missing\.png: no such file or folder$/);
    mkdirSync(join(dir, 'folder.png'));
    expect((await failure(readFileBytes(join(dir, 'folder.png')))).message).toMatch(/folder\.png: is a folder, not a file$/);
    writeFileSync(join(dir, 'big.bin'), new Uint8Array(1000));
    expect((await failure(readFileBytes(join(dir, 'big.bin'), 999))).message).toMatch(/big\.bin: 1000 bytes, over the limit of 999$/);
    writeFileSync(join(dir, 'text.png'), 'hello');
    const notImage = await failure(readImageFile(join(dir, 'text.png')));
    expect([notImage.code, notImage.path]).toEqual(['NOT_AN_IMAGE', join(dir, 'text.png')]);
  });

  it('decode a PNG file with the pixel limit applied', async () => {
    const path = join(dir, 'small.png');
    writeFileSync(path, encodePng({ width: 4, height: 3, channels: 1, data: new Uint8Array(12).fill(9) }));
    expect((await readImageFile(path)).data).toEqual(new Uint8Array(12).fill(9));
    const error = await failure(readImageFile(path, { maxPixels: 11 }));
    expect(error.message).toBe(`${path}: the PNG is 4×3 = 12 pixels, over the limit of 11`);
    expect(existsSync(path)).toBe(true);
  });
});
