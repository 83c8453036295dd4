import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = dirname(fileURLToPath(import.meta.url));

/**
 * Vitest settings shared by every package. Besides the usual console report, each package writes
 * `.test-results/<package>.json`, which `.ci/run` sums into its "N passed, N failed" line.
 */
export function packageTestConfig(packageDir: string) {
  return defineConfig({
    test: {
      include: ['test/**/*.test.ts'],
      testTimeout: 120_000,
      reporters: ['default', 'json'],
      outputFile: { json: resolve(root, '.test-results', `${basename(packageDir)}.json`) },
    },
  });
}
