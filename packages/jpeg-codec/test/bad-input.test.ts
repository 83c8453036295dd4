import { describe, expect, it } from 'vitest';
import { decodeJpeg, encodeJpeg, JpegError, readJpegInfo, type JpegErrorCode } from '../src/index.js';
import { segment, splice } from './markers.js';
import { syntheticPhoto } from './synthetic.js';

const valid = encodeJpeg(syntheticPhoto(40, 30, 1), { quality: 75 });
const sof = segment(valid, 0xc0);

function expectJpegError(input: Uint8Array, code: JpegErrorCode, message?: RegExp, options = {}): void {
  let error: unknown;
  try {
    decodeJpeg(input, options);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(JpegError);
  expect((error as JpegError).code).toBe(code);
  if (message) expect((error as JpegError).message).toMatch(message);
}

function patched(offset: number, ...bytes: number[]): Uint8Array {
  const out = valid.slice();
  out.set(bytes, offset);
  return out;
}

describe('bad input gives a typed JpegError', () => {
  it('not a JPEG at all', () => {
    expectJpegError(new Uint8Array(0), 'NOT_JPEG');
    expectJpegError(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'NOT_JPEG', /SOI/);
    expectJpegError(Uint8Array.from({ length: 1000 }, (_, i) => (i * 37) & 255), 'NOT_JPEG');
  });

  it('input that is not a Uint8Array', () => {
    expectJpegError('not bytes' as unknown as Uint8Array, 'INVALID_ARGUMENT');
  });

  it('truncated anywhere: TRUNCATED (or CORRUPT), and never a crash', () => {
    for (let n = 2; n < valid.length; n += 7) {
      let error: unknown;
      try {
        decodeJpeg(valid.subarray(0, n));
      } catch (e) {
        error = e;
      }
      expect(error, `truncated at ${n}`).toBeInstanceOf(JpegError);
      expect(['TRUNCATED', 'CORRUPT']).toContain((error as JpegError).code);
    }
    expectJpegError(valid.subarray(0, valid.length - 40), 'TRUNCATED', /truncated|premature/);
  });

  it('truncated scan data decodes with allowTruncated, reporting a warning', () => {
    const cut = valid.subarray(0, valid.length - 100);
    const img = decodeJpeg(cut, { allowTruncated: true });
    expect([img.width, img.height]).toEqual([40, 30]);
    expect(img.info.warnings.join(' ')).toMatch(/ended early|EOI/);
    // The decoded top rows equal the full decode; the missing tail differs.
    const full = decodeJpeg(valid);
    expect(img.data.subarray(0, 40 * 3 * 8)).toEqual(full.data.subarray(0, 40 * 3 * 8));
  });

  it('12-bit, lossless, hierarchical and arithmetic-coded JPEG', () => {
    expectJpegError(patched(sof.offset + 4, 12), 'UNSUPPORTED', /12-bit/);
    for (const [marker, what] of [[0xc3, /lossless/], [0xc5, /hierarchical/], [0xc9, /arithmetic/], [0xca, /arithmetic/]] as const) {
      expectJpegError(patched(sof.offset + 1, marker), 'UNSUPPORTED', what);
    }
    // DAC marker (arithmetic conditioning) before the frame.
    expectJpegError(splice(valid, 2, 2, [0xff, 0xcc, 0x00, 0x04, 0x00, 0x00]), 'UNSUPPORTED', /arithmetic/);
  });

  it('CMYK and other component counts', () => {
    const body = [8, 0, 30, 0, 40, 4, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1, 4, 0x11, 0];
    const cmyk = splice(valid, sof.offset, sof.offset + sof.size, [0xff, 0xc0, 0, body.length + 2, ...body]);
    expectJpegError(cmyk, 'UNSUPPORTED', /CMYK/);
    expectJpegError(patched(sof.offset + 9, 2), 'UNSUPPORTED', /2-component/);
    expectJpegError(patched(sof.offset + 2, 0, 20), 'CORRUPT', /does not match/); // SOF length disagrees with 3 components
  });

  it('absurd dimensions hit the pixel limit before any allocation', () => {
    expectJpegError(patched(sof.offset + 5, 0xff, 0xff, 0xff, 0xff), 'TOO_LARGE', /65535×65535/);
    expectJpegError(valid, 'TOO_LARGE', /over the limit of 1000/, { maxPixels: 1000 });
    expect(() => readJpegInfo(patched(sof.offset + 5, 0xff, 0xff, 0xff, 0xff))).toThrowError(/pixels/);
    expectJpegError(patched(sof.offset + 5, 0, 0), 'UNSUPPORTED', /DNL/);
    expectJpegError(patched(sof.offset + 7, 0, 0), 'CORRUPT', /width/);
  });

  it('structural errors', () => {
    const dht = segment(valid, 0xc4);
    expectJpegError(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), 'CORRUPT', /SOF/);
    expectJpegError(patched(dht.offset + 1, 0x02), 'CORRUPT', /unknown marker/);
    const sos = segment(valid, 0xda);
    const noTables = splice(valid, dht.offset, sos.offset);
    expectJpegError(noTables, 'CORRUPT', /Huffman table/);
    const dqt = segment(valid, 0xdb);
    const sosBeforeSof = splice(valid, sof.offset, sof.offset + sof.size);
    expectJpegError(sosBeforeSof, 'CORRUPT', /SOS marker before SOF/);
    expectJpegError(patched(dqt.offset + 2, 0, 1), 'CORRUPT', /invalid length/);
    expectJpegError(patched(sof.offset + 11, 0x50), 'CORRUPT', /sampling/); // Y sampling 5×0
    expectJpegError(patched(sos.offset + 5, 9), 'CORRUPT', /unknown component/);
    const secondSof = splice(valid, sos.offset, sos.offset, valid.subarray(sof.offset, sof.offset + sof.size));
    expectJpegError(secondSof, 'CORRUPT', /more than one SOF/);
  });

  it('garbage inside entropy-coded data is CORRUPT, not a crash', () => {
    const sos = segment(valid, 0xda);
    const start = sos.offset + sos.size;
    const broken = valid.slice();
    broken.fill(0xff, start + 10, start + 30); // a run of fill bytes then data: an invalid marker sequence
    let error: unknown;
    try {
      decodeJpeg(broken);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(JpegError);
  });
});
