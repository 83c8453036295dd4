// Node: where the built site lies and a small static server for it (`npm run web`, `codiff serve`).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LITE_MODEL_NAME } from '@codiff/model-lite';
import { liteModelDir } from '@codiff/model-lite/node';
import { CROSS_ORIGIN_ISOLATION } from './headers.js';

/**
 * The built page (`dist/site` of this package): index.html, scripts, the wasm binaries and the default model (in the
 * npm package only its manifest: the weights are @codiff/model-lite's, which `serveSite` serves).
 */
export function siteDir(): string {
  return fileURLToPath(new URL('./site/', import.meta.url));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.map': 'application/json',
};

export interface ServeOptions {
  /** Default 5180; 0 picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1 (this machine only); 0.0.0.0 serves the network. */
  readonly host?: string;
  /** Default: `siteDir()`. */
  readonly dir?: string;
}

export interface ServedSite {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Serve the site (GET/HEAD, no directory listings, nothing outside `dir`), cross-origin isolated so the wasm
 * backend may use threads. Errors such as a port in use reject with a message that says what to do.
 */
export async function serveSite(options: ServeOptions = {}): Promise<ServedSite> {
  const dir = options.dir ?? siteDir();
  const port = options.port ?? 5180;
  const host = options.host ?? '127.0.0.1';
  if (!(await stat(join(dir, 'index.html')).catch(() => undefined))) {
    throw new Error(`${dir} holds no built page (index.html): build it with \`npx nx run web:build\``);
  }
  // The default model's files where the site lacks them (the npm package leaves out this 20 MB copy; the manifest stays).
  const modelBase = `/models/${LITE_MODEL_NAME}/`;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return void res.writeHead(400).end('bad path');
    }
    const file = within(dir, path.endsWith('/') ? path + 'index.html' : path);
    if (!file) return void res.writeHead(403).end();
    const fallback = path.startsWith(modelBase) ? within(liteModelDir(), path.slice(modelBase.length)) : undefined;
    findFile(file)
      .then((hit) => hit ?? (fallback === undefined ? undefined : findFile(fallback)))
      .then((hit) => {
        if (!hit) return void res.writeHead(404).end('not found');
        res.writeHead(200, {
          'content-type': TYPES[extname(hit.file)] ?? 'application/octet-stream',
          'content-length': hit.size,
          'cache-control': 'no-cache',
          ...CROSS_ORIGIN_ISOLATION,
        });
        if (req.method === 'HEAD') return void res.end();
        createReadStream(hit.file).pipe(res);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === 'EADDRINUSE' ? `port ${port} is in use: choose another (--port)` : `cannot serve on ${host}:${port}: ${e.message}`)),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return {
    url: `http://${shown}:${actual}/`,
    server,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

/** `path` (from a URL) inside `root`, or undefined when it would leave it (an encoded "../"). */
function within(root: string, path: string): string | undefined {
  const file = normalize(join(root, path));
  return file.startsWith(normalize(root.endsWith(sep) ? root : root + sep)) ? file : undefined;
}

const findFile = (file: string) => stat(file).then((s) => (s.isFile() ? { file, size: s.size } : undefined), () => undefined);
