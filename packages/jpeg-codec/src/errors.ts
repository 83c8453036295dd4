/** Why a JPEG could not be decoded or encoded. Stable strings: match on `code`, not on `message`. */
export type JpegErrorCode =
  | 'NOT_JPEG' // no SOI marker
  | 'TRUNCATED' // data ended before the image was complete
  | 'CORRUPT' // malformed marker segment or entropy-coded data
  | 'UNSUPPORTED' // valid JPEG we deliberately do not decode (12-bit, arithmetic, lossless, CMYK, ...)
  | 'TOO_LARGE' // over the pixel limit
  | 'INVALID_ARGUMENT'; // bad options or input image for the encoder / degradation API

export class JpegError extends Error {
  readonly code: JpegErrorCode;
  constructor(code: JpegErrorCode, message: string) {
    super(message);
    this.name = 'JpegError';
    this.code = code;
  }
}
