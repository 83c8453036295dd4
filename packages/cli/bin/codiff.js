#!/usr/bin/env node
// The `codiff` executable. It exists before the first build so that `npm ci` links it onto the PATH; the program
// itself is dist/bin.js, built by `npm run build` (the README's set-up does both).
import('../dist/bin.js').catch((e) => {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist/bin.js')) {
    console.error('codiff: not built yet; run `npm run build` in the repository first');
    process.exit(1);
  }
  throw e;
});
