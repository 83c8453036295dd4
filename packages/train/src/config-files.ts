// Node-only: the stage configurations shipped in configs/ and user JSON files of the same shape.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TrainError } from './errors.js';

// configs/ sits beside src/ and dist/ alike.
const CONFIG_DIR = fileURLToPath(new URL('../configs/', import.meta.url));

/** `configs/<stage>-<name>.json` for a shipped name, else the JSON file at `nameOrPath`, validated. */
export async function readConfigFile<C>(stage: string, names: readonly string[], nameOrPath: string, validate: (c: C, where: string) => C): Promise<C> {
  const path = names.includes(nameOrPath) ? join(CONFIG_DIR, `${stage}-${nameOrPath}.json`) : resolve(nameOrPath);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new TrainError(`no configuration '${nameOrPath}' (named ones: ${names.join(', ')}; or give a JSON file)`);
  }
  let parsed: C;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TrainError(`${path}: not JSON (${(e as Error).message})`);
  }
  return validate(parsed, path);
}
