/** Errors of the pipeline package: inputs the generator cannot take, checkpoints that do not fit it. */
export class PipelineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipelineError';
  }
}
