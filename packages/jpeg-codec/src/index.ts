export { JpegError, type JpegErrorCode } from './errors.js';
export { type RawImage, type Subsampling } from './image.js';
export { encodeJpeg, type EncodeOptions } from './encoder.js';
export {
  decodeJpeg,
  readJpegInfo,
  DEFAULT_MAX_PIXELS,
  type DecodeOptions,
  type DecodedJpeg,
  type JpegInfo,
  type JpegComponentInfo,
} from './decoder.js';
export { estimateQuality, type QualityEstimate } from './metadata.js';
export { qualityScaling, scaleQuantTable, STD_LUMINANCE_QUANT, STD_CHROMINANCE_QUANT } from './tables.js';
export { degrade, doubleCompress, crop, toGrey, type DegradeOptions, type DoubleCompressOptions } from './degrade.js';
