// Node-only: the stage configurations shipped in configs/ and user JSON files of the same shape.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TrainError } from './errors.js';

// configs/ sits beside src/ and dist/ alike.
const CONFIG_DIR = fileURLToPath(new URL('../configs/', import.meta.url));

/**
 * `configs/<stage>-<name>.json` for a shipped name, else the JSON file at `nameOrPath`, validated. A file may start
 * from another with `"extends": "<name or path>"` (a path relative to the file): its own fields replace the base's,
 * objects (such as `optimizer`) field by field, arrays and values whole.
 */
export async function readConfigFile<C>(stage: string, names: readonly string[], nameOrPath: string, validate: (c: C, where: string) => C): Promise<C> {
  const { config, path } = await readWithBases(stage, names, nameOrPath, process.cwd(), []);
  return validate(config as C, path);
}

async function readWithBases(stage: string, names: readonly string[], nameOrPath: string, relativeTo: string, chain: string[]): Promise<{ config: Record<string, unknown>; path: string }> {
  const path = names.includes(nameOrPath) ? join(CONFIG_DIR, `${stage}-${nameOrPath}.json`) : resolve(relativeTo, nameOrPath);
  if (chain.includes(path)) throw new TrainError(`configuration ${path} extends itself (${[...chain, path].join(' → ')})`);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    const from = chain.length ? ` (extended by ${chain[chain.length - 1]})` : '';
    throw new TrainError(`no configuration '${nameOrPath}'${from} (named ones: ${names.join(', ')}; or give a JSON file)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TrainError(`${path}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(parsed) || parsed.extends === undefined) return { config: parsed as Record<string, unknown>, path };
  const { extends: base, ...own } = parsed;
  if (typeof base !== 'string' || base === '') throw new TrainError(`${path}: extends must be a configuration name or a JSON file (got ${JSON.stringify(base)})`);
  const inherited = await readWithBases(stage, names, base, dirname(path), [...chain, path]);
  return { config: overlay(inherited.config, own), path };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `base` with `own`'s fields on top: nested objects merged field by field, anything else replaced. */
function overlay(base: Record<string, unknown>, own: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(own)) out[k] = isObject(v) && isObject(out[k]) ? overlay(out[k] as Record<string, unknown>, v) : v;
  return out;
}
