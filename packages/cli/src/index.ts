export { run, buildProgram, errorLine, toJson, type Io } from './program.js';
export { degradeCommand, jpegInfoCommand, formatInfo, type DegradeArgs, type DegradeResult } from './commands.js';
export { readImage, writeOutput, CliError } from './io.js';
export { metricsCommand, formatMetrics, type MetricsArgs, type MetricsResult } from './metrics.js';
export { convertWeightsCommand, type ConvertArgs, type ConvertResult } from './convert.js';
