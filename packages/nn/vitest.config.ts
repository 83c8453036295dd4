import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeConfig } from 'vitest/config';
import { packageTestConfig } from '../../vitest.shared.js';

// tfjs-core must be a single module instance shared by the backends: inline @tensorflow/* and prefer their ESM.
export default mergeConfig(packageTestConfig(dirname(fileURLToPath(import.meta.url))), {
  resolve: { mainFields: ['module', 'jsnext:main', 'jsnext', 'main'] },
  test: { server: { deps: { inline: [/@tensorflow\//] } } },
});
