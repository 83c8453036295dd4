export { run, buildProgram, type Io } from './program.js';
export { degradeCommand, jpegInfoCommand, formatInfo, psnr, type DegradeArgs, type DegradeResult } from './commands.js';
export { readImage, encodePng, CliError } from './image-io.js';
