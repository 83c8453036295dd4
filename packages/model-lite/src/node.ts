// Node-only: where the installed model folder lies on disk.
import { fileURLToPath } from 'node:url';

/**
 * The installed model folder (`model/`, beside `dist/` and `src/`): give it to `@codiff/pipeline/node`'s
 * `loadCodiffFolder`, as `codiff restore` does when no `--model` is given.
 */
export function liteModelDir(): string {
  return fileURLToPath(new URL('../model/', import.meta.url));
}
