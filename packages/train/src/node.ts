export { scanPhotoFolder, centrePairs, PairLoader, type Photo, type SkippedFile, type PairLoaderOptions } from './data.js';
export { train, writeCurves, readCheckpointMetadata, CHECKPOINT_FILE, LOG_FILE, CURVE_FILE, type TrainingTask, type TrainerOptions, type TrainProgress, type TrainSummary } from './trainer.js';
export { trainStage1, loadStage1Config, STAGE1_CONFIG_NAMES, VALIDATION_QUALITIES, type Stage1RunOptions } from './stage1-run.js';
export { lineChartSvg, scatterSvg, svgToPng, type LinePoint, type ScatterPoint } from './plot.js';
export { qualityStudy, STUDY_MAX_SIDE, type QualityStudy, type QualityRow } from './quality-study.js';
export { trainStage2, loadStage2Config, STAGE2_CONFIG_NAMES, STAGE2_VALIDATION_QUALITIES, type Stage2RunOptions } from './stage2-run.js';
export { readValidationPhotos, validateOnPhotos, PHOTO_VALIDATION_QUALITIES, type ValidationPhoto } from './photo-validation.js';
export { fitPostFilter, POST_FILTER_QUALITIES, type PostFilterFitOptions } from './post-filter-fit.js';
