/**
 * codiff-lite's files are a model folder of @codiff/pipeline's stand-in layout (`STAND_IN_MODEL_FILES`) under
 * `model/` in this package: `liteModelDir()` (the `/node` entry) finds it on disk; a web page serves the same files
 * and loads them with `loadModelFolder` and `fetch` (as @codiff/web does).
 */
export const LITE_MODEL_NAME = 'codiff-lite';
