import { decodeJpeg, JpegError, readJpegInfo, type RawImage } from '@codiff/jpeg-codec';
import { ImageIoError } from './errors.js';
import { orient } from './orientation.js';
import { decodePng, isPng, readPngHeader } from './png.js';

/**
 * Default pixel limit of every reader: 100 megapixels (10000×10000). Decoding costs a few bytes per pixel (see
 * the README); raise it per call when you mean to work on larger images.
 */
export const DEFAULT_MAX_PIXELS = 100_000_000;

export type ImageFormat = 'png' | 'jpeg';

export interface ImageHeader {
  readonly format: ImageFormat;
  readonly width: number;
  readonly height: number;
  /** 1 for grey images (grey PNG, single-component JPEG), else 3. */
  readonly channels: 1 | 3;
  /** EXIF orientation 1..8 of a JPEG, when present. */
  readonly orientation: number | undefined;
}

export interface DecodeImageOptions {
  /** Refuse images with more pixels than this, read from the header before decoding. Default 100 M. */
  readonly maxPixels?: number;
  /** 'native' (default): grey stays 1 channel; 'rgb': grey is expanded to 3 equal channels. */
  readonly channels?: 'native' | 'rgb';
  /** Apply a JPEG's EXIF orientation so the pixels are upright, as viewers show them. Default false. */
  readonly orient?: boolean;
}

export interface DecodedImage extends RawImage {
  readonly channels: 1 | 3;
  readonly data: Uint8Array;
  readonly format: ImageFormat;
}

const isJpeg = (bytes: Uint8Array) => bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8;

function fromJpegError(e: unknown): unknown {
  if (!(e instanceof JpegError)) return e;
  const code = e.code === 'NOT_JPEG' ? 'NOT_AN_IMAGE' : e.code === 'INVALID_ARGUMENT' ? 'CORRUPT' : e.code;
  return new ImageIoError(code, `JPEG: ${e.message}`);
}

function checkLimit(maxPixels: number | undefined): number {
  const limit = maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(limit > 0)) throw new RangeError(`maxPixels must be positive, got ${maxPixels}`);
  return limit;
}

/** Format, size and channels from the header alone (PNG IHDR, JPEG SOF), without decoding pixels. */
export function readImageHeader(bytes: Uint8Array, options: Pick<DecodeImageOptions, 'maxPixels'> = {}): ImageHeader {
  const maxPixels = checkLimit(options.maxPixels);
  if (isPng(bytes)) {
    const h = readPngHeader(bytes);
    if (h.width * h.height > maxPixels) {
      throw new ImageIoError('TOO_LARGE', `the PNG is ${h.width}×${h.height} = ${h.width * h.height} pixels, over the limit of ${maxPixels}`);
    }
    return { format: 'png', width: h.width, height: h.height, channels: h.colorType === 0 || h.colorType === 4 ? 1 : 3, orientation: undefined };
  }
  if (isJpeg(bytes)) {
    try {
      const info = readJpegInfo(bytes, { maxPixels });
      return { format: 'jpeg', width: info.width, height: info.height, channels: info.colorSpace === 'grayscale' ? 1 : 3, orientation: info.orientation };
    } catch (e) {
      throw fromJpegError(e);
    }
  }
  throw new ImageIoError('NOT_AN_IMAGE', 'not a PNG or JPEG file');
}

/**
 * Decode a PNG or JPEG into 8-bit grey or RGB, checking the pixel limit from the header before any pixel memory
 * is allocated. JPEG decoding is libjpeg-turbo's (djpeg/PIL); PNG alpha is dropped. Errors are ImageIoErrors.
 */
export function decodeImage(bytes: Uint8Array, options: DecodeImageOptions = {}): DecodedImage {
  const maxPixels = checkLimit(options.maxPixels);
  let image: RawImage;
  let format: ImageFormat;
  let orientation: number | undefined;
  if (isPng(bytes)) {
    image = decodePng(bytes, { maxPixels });
    format = 'png';
  } else if (isJpeg(bytes)) {
    try {
      const jpeg = decodeJpeg(bytes, { maxPixels, output: 'native' });
      image = jpeg;
      orientation = jpeg.info.orientation;
    } catch (e) {
      throw fromJpegError(e);
    }
    format = 'jpeg';
  } else throw new ImageIoError('NOT_AN_IMAGE', 'not a PNG or JPEG file');
  if (options.orient && orientation !== undefined && orientation !== 1) image = orient(image, orientation);
  if (options.channels === 'rgb' && image.channels === 1) image = greyToRgb(image);
  return { ...image, channels: image.channels as 1 | 3, data: image.data as Uint8Array, format };
}

/** Grey → three equal channels (PIL's convert('RGB')). */
export function greyToRgb(image: RawImage): RawImage {
  if (image.channels !== 1) return image;
  const data = new Uint8Array(image.data.length * 3);
  for (let i = 0, j = 0; i < image.data.length; i++, j += 3) data[j] = data[j + 1] = data[j + 2] = image.data[i];
  return { width: image.width, height: image.height, channels: 3, data };
}
