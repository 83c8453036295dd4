export { CaVE, OFFICIAL_CAVE, caveConfigOf, caveFromCheckpoint, caveFromStateDict, caveParameterCount, type CaveConfig, type CaveOutput } from './cave.js';
export { CaveError } from './errors.js';
