/** Why an image or file could not be read or written. Match on `code`; `message` is for people. */
export type ImageIoErrorCode =
  | 'NOT_AN_IMAGE' // neither PNG nor JPEG
  | 'TRUNCATED' // the data ends early
  | 'CORRUPT' // damaged data
  | 'UNSUPPORTED' // a valid file of a kind we do not decode
  | 'TOO_LARGE' // over a pixel or size limit
  | 'OUTPUT_IS_INPUT' // writing would overwrite an input
  | 'FILE_SYSTEM'; // the file system refused (missing file, permission, full disk, …)

export class ImageIoError extends Error {
  constructor(
    readonly code: ImageIoErrorCode,
    message: string,
    /** The file concerned, when there is one; `message` then starts with it. */
    readonly path?: string,
  ) {
    super(path === undefined ? message : `${path}: ${message}`);
    this.name = 'ImageIoError';
  }

  /** The same error, about `path`. */
  withPath(path: string): ImageIoError {
    return this.path === undefined ? new ImageIoError(this.code, this.message, path) : this;
  }
}
