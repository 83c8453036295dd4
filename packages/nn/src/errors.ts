/**
 * Why a call failed, where a caller may act on it: TOO_LARGE is a refused resource limit (raise it if you trust the
 * input); OUT_OF_MEMORY is work the wasm backend's 4 GiB heap cannot hold (make it smaller, or use WebGPU).
 */
export type NnErrorCode = 'TOO_LARGE' | 'OUT_OF_MEMORY';

/** Errors from the runtime: bad files, missing backends, checkpoint/model mismatches. */
export class NnError extends Error {
  constructor(
    message: string,
    readonly code?: NnErrorCode,
  ) {
    super(message);
    this.name = 'NnError';
  }
}
