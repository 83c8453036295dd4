import { existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';

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

/**
 * For packages on TF.js: tfjs-core must be one module instance shared by its backends. Vite processes
 * @tensorflow/* (and our packages that import it) and resolves their ESM entry points; otherwise some are
 * handed to Node's CJS loader, which loads a second tfjs-core.
 */
export function tfjsTestConfig(packageDir: string) {
  return mergeConfig(packageTestConfig(packageDir), {
    ssr: { resolve: { mainFields: ['module', 'jsnext:main', 'jsnext', 'main'] } },
    test: { server: { deps: { inline: [/@tensorflow\//, /@codiff\//] } }, env: webgpuTestEnv() },
  });
}

/** Without a GPU, Dawn (the `webgpu` package) runs WebGPU on SwiftShader, which Debian ships inside chromium. */
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

function webgpuTestEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  if (!process.env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = '/tmp';
  return env;
}
