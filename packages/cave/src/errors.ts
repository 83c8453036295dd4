/** Errors of the CaVE package: inputs the model cannot take, checkpoints that do not fit it. */
export class CaveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaveError';
  }
}
