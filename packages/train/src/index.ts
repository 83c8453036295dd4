export { Rng } from './rng.js';
export { drawRecipe, makePair, dihedral, batchOf, COMMON_QUALITIES, type SampleRecipe, type TrainingPair, type PairBatch } from './samples.js';
export { Adam, AdamW, clipGradNorm, gradientsOf, type AdamOptions, type Gradients } from './optim.js';
export { stage1Losses, QF_LOSS_WEIGHT, type Stage1Batch, type Stage1Losses } from './stage1.js';
export { TrainError } from './errors.js';
export { learningRateAt, validateStage1Config, validateStage2Config, type Stage1Config, type Stage2Config, type OptimizerConfig } from './config.js';
export { officialInit, orthogonal, initGenerator, initDiscriminator } from './init.js';
export {
  generatorLosses,
  discriminatorLosses,
  realLatents,
  OFFICIAL_STAGE2_WEIGHTS,
  type Stage2Batch,
  type Stage2Weights,
  type GeneratorLosses,
  type PerceptualDistance,
} from './stage2.js';
