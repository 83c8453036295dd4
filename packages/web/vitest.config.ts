import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tfjsTestConfig } from '../../vitest.shared.js';

export default tfjsTestConfig(dirname(fileURLToPath(import.meta.url)));
