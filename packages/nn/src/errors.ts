/** Errors from the runtime: bad files, missing backends, checkpoint/model mismatches. */
export class NnError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NnError';
  }
}
