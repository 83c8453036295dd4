export { DnCNN } from './dncnn.js';
export { EvalError } from './errors.js';
export { groundTruth, compress, type Protocol, type Compressed } from './protocol.js';
export { measure, type Scores, type PerceptualModels } from './measure.js';
export { toCsv, summarise, summaryMarkdown, contactSheet, centreCrop, CROP_SIZE, type ResultRow, type SummaryRow } from './report.js';
