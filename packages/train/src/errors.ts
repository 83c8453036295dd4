/** Errors of training: configurations, data folders, checkpoints and resumption. */
export class TrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainError';
  }
}
