import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LITE_MODEL_NAME } from '@codiff/model-lite';
import { liteModelDir } from '@codiff/model-lite/node';
import { OPTIONAL_MODEL_FILES, STAND_IN_MODEL_FILES } from '@codiff/pipeline';
import { defineConfig, type Plugin } from 'vite';
import { CROSS_ORIGIN_ISOLATION } from './src/headers.js';

/**
 * The default model's files under `models/<name>/` of the site (its optional ones, the post-filter, where it has them),
 * with a manifest (sizes and a content id, which keys the page's Cache Storage copy): emitted into the build, served
 * by the dev server.
 */
function defaultModel(): Plugin {
  const dir = liteModelDir();
  const base = `models/${LITE_MODEL_NAME}/`;
  const files = () =>
    [...STAND_IN_MODEL_FILES, ...OPTIONAL_MODEL_FILES.filter((path) => existsSync(join(dir, path)))].map((path) => ({ path, bytes: readFileSync(join(dir, path)) }));
  const manifest = (list: ReturnType<typeof files>) => {
    const id = createHash('sha256');
    for (const f of list) id.update(f.path).update(createHash('sha256').update(f.bytes).digest());
    return JSON.stringify({ name: LITE_MODEL_NAME, id: id.digest('hex').slice(0, 16), files: list.map((f) => ({ path: f.path, bytes: f.bytes.length })) }, null, 2);
  };
  return {
    name: 'codiff-default-model',
    generateBundle() {
      const list = files();
      for (const f of list) this.emitFile({ type: 'asset', fileName: base + f.path, source: f.bytes });
      this.emitFile({ type: 'asset', fileName: base + 'manifest.json', source: manifest(list) });
    },
    configureServer(server) {
      server.middlewares.use(`/${base}`, (req, res, next) => {
        const path = (req.url ?? '').split('?')[0].replace(/^\//, '');
        const list = files();
        const body = path === 'manifest.json' ? manifest(list) : list.find((f) => f.path === path)?.bytes;
        if (body === undefined) return next();
        res.setHeader('content-type', path.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.end(body);
      });
    },
  };
}

export default defineConfig({
  base: './',
  plugins: [defaultModel()],
  // Not minified: TF.js's threaded wasm backend starts its threads from `factory.toString()`, and renaming the
  // identifiers that function closes over breaks them ("e is not defined" in the thread workers).
  build: { outDir: 'dist/site', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 4096, minify: false },
  worker: { format: 'es' },
  // Cross-origin isolation lets the wasm backend use threads, as `codiff serve` does.
  server: { headers: CROSS_ORIGIN_ISOLATION },
  preview: { headers: CROSS_ORIGIN_ISOLATION },
});
