// The publishable packages of the repository and their entry points, read from their package.json files.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

export interface PackageInfo {
  readonly name: string;
  readonly dir: string;
  readonly json: {
    name: string;
    private?: boolean;
    dependencies?: Record<string, string>;
    exports: Record<string, { import: { types: string; default: string }; require: { types: string; default: string } }>;
    bin?: Record<string, string>;
    files?: string[];
  };
  /** Export subpaths: '.', './node', … */
  readonly entries: string[];
}

export const PACKAGES: PackageInfo[] = readdirSync(join(ROOT, 'packages')).map((folder) => {
  const dir = join(ROOT, 'packages', folder);
  const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return { name: json.name, dir, json, entries: Object.keys(json.exports) };
});

/** `@codiff/nn` + './node' → '@codiff/nn/node'. */
export const specifier = (name: string, entry: string) => (entry === '.' ? name : `${name}/${entry.slice(2)}`);
