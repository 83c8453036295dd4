/** An evaluation that cannot go on: a restorer that is missing, fails, or returns the wrong size; a bad template. */
export class EvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalError';
  }
}
