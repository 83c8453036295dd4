// Node-only: files. Reading with a size check and plain-words errors; writing atomically (temp file + rename in the
// target folder) and never onto an input. Every failure is an ImageIoError whose message starts with the path.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { decodeImage, type DecodedImage, type DecodeImageOptions } from './decode.js';
import { ImageIoError } from './errors.js';

/** Largest file `readFileBytes` reads by default: 2 GiB, Node's own limit for one buffer read. */
export const DEFAULT_MAX_FILE_BYTES = 2 ** 31 - 1;

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  EISDIR: 'is a folder, not a file',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  EEXIST: 'already exists',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

/** A Node file-system error as an ImageIoError about `path`, in plain words. */
export function fileSystemError(path: string, e: unknown): ImageIoError {
  if (e instanceof ImageIoError) return e.withPath(path);
  const err = e as NodeJS.ErrnoException;
  return new ImageIoError('FILE_SYSTEM', REASONS[err.code ?? ''] ?? err.message ?? String(e), path);
}

/** A whole file, after checking that it is a regular file no larger than `maxBytes`. */
export async function readFileBytes(path: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw fileSystemError(path, e);
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw new ImageIoError('FILE_SYSTEM', REASONS.EISDIR, path);
    if (!info.isFile()) throw new ImageIoError('FILE_SYSTEM', 'not a regular file', path);
    if (info.size > maxBytes) throw new ImageIoError('TOO_LARGE', `${info.size} bytes, over the limit of ${maxBytes}`, path);
    const bytes = new Uint8Array(info.size);
    for (let at = 0; at < bytes.length; ) {
      const { bytesRead } = await handle.read(bytes, at, bytes.length - at, at);
      if (bytesRead === 0) throw new ImageIoError('TRUNCATED', 'the file shrank while it was read', path);
      at += bytesRead;
    }
    return bytes;
  } catch (e) {
    throw fileSystemError(path, e);
  } finally {
    await handle.close();
  }
}

/** Read and decode a PNG or JPEG file (pixel limit from the header before decoding; see `decodeImage`). */
export async function readImageFile(path: string, options: DecodeImageOptions = {}): Promise<DecodedImage> {
  const bytes = await readFileBytes(path);
  try {
    return decodeImage(bytes, options);
  } catch (e) {
    throw e instanceof ImageIoError ? e.withPath(path) : e;
  }
}

/** Device and inode of a path, or undefined when it does not exist. */
async function identity(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * Refuse an output that is one of the inputs: the same file under another name, through a link, or the same path.
 * Compares devices and inodes, so symbolic and hard links are caught too.
 */
export async function assertNotAnInput(output: string, inputs: readonly string[]): Promise<void> {
  const target = await identity(output);
  for (const input of inputs) {
    const same = resolve(input) === resolve(output) || (target !== undefined && target === (await identity(input)));
    if (same) throw new ImageIoError('OUTPUT_IS_INPUT', `is also an input (${input}); refusing to overwrite it`, output);
  }
}

export interface WriteOptions {
  /** Files the output must not be (checked by identity, see `assertNotAnInput`). */
  readonly inputs?: readonly string[];
}

/**
 * Write `data` to `path` so that readers see the old file or the whole new one, never a part: the bytes go to a
 * temporary file in the same folder, are flushed, then renamed over `path`. Missing folders are created. On any
 * failure the temporary file is removed and an ImageIoError names `path` and the reason.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, options: WriteOptions = {}): Promise<void> {
  await assertNotAnInput(path, options.inputs ?? []);
  const folder = dirname(resolve(path));
  const temp = join(folder, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const existing = await stat(path).catch(() => undefined);
    if (existing?.isDirectory()) throw new ImageIoError('FILE_SYSTEM', REASONS.EISDIR, path);
    // mkdir reports a file standing where a folder should be as EEXIST.
    await mkdir(folder, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'EEXIST' ? new ImageIoError('FILE_SYSTEM', REASONS.ENOTDIR, path) : e;
    });
    const handle = await open(temp, 'wx');
    try {
      for (let at = 0; at < bytes.length; ) at += (await handle.write(bytes, at, bytes.length - at)).bytesWritten;
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw fileSystemError(path, e);
  }
}
