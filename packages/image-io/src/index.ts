export { ImageIoError, type ImageIoErrorCode } from './errors.js';
export {
  decodeImage,
  readImageHeader,
  greyToRgb,
  DEFAULT_MAX_PIXELS,
  type DecodeImageOptions,
  type DecodedImage,
  type ImageFormat,
  type ImageHeader,
} from './decode.js';
export { encodePng, readPngHeader, isPng, type PngHeader } from './png.js';
export { orient } from './orientation.js';
export { resizeLanczos, resizeToMultipleOf8 } from './resize.js';
