import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageTestConfig } from '../vitest.shared.js';

export default packageTestConfig(dirname(fileURLToPath(import.meta.url)));
