// The static server behind `npm run web` and `codiff serve`.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { liteModelDir } from '@codiff/model-lite/node';
import { serveSite, siteDir } from '@codiff/web/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** The status of a request for `path` sent as is (fetch would normalise it). */
const rawStatus = (url: string, path: string) =>
  new Promise<number>((resolve, reject) => {
    request({ host: '127.0.0.1', port: new URL(url).port, path }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject).end();
  });

describe('serveSite', () => {
  let dir: string;
  let site: Awaited<ReturnType<typeof serveSite>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'codiff-site-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><p>page</p>');
    await writeFile(join(dir, 'assets', 'kernels.wasm'), new Uint8Array([0, 97, 115, 109]));
    await writeFile(join(dir, '..', 'codiff-secret.txt'), 'outside');
    site = await serveSite({ dir, port: 0 });
  });

  afterAll(async () => {
    await site.close();
    await rm(dir, { recursive: true, force: true });
    await rm(join(dir, '..', 'codiff-secret.txt'), { force: true });
  });

  it('serves the page cross-origin isolated, wasm as application/wasm', async () => {
    const page = await fetch(site.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(await page.text()).toContain('page');
    const wasm = await fetch(new URL('assets/kernels.wasm', site.url));
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    expect([...new Uint8Array(await wasm.arrayBuffer())]).toEqual([0, 97, 115, 109]);
  });

  it('answers 404 for what is not there, never a file outside the site, and only GET/HEAD', async () => {
    expect((await fetch(new URL('nothing.js', site.url))).status).toBe(404);
    expect((await fetch(new URL('assets/', site.url))).status).toBe(404);
    // URLs normalise ".." segments; an encoded slash survives that and must still be refused.
    expect(await rawStatus(site.url, '/..%2fcodiff-secret.txt')).toBe(403);
    expect((await fetch(site.url, { method: 'POST' })).status).toBe(405);
  });

  it('says what to do when the port is taken or the page is not built', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    await expect(serveSite({ dir, port })).rejects.toThrow(`port ${port} is in use: choose another (--port)`);
    taken.close();
    await expect(serveSite({ dir: join(dir, 'assets'), port: 0 })).rejects.toThrow(/holds no built page \(index\.html\): build it with `npx nx run web:build`/);
  });

  it('the built site holds the page, the wasm binaries and the default model with its manifest', async () => {
    const built = await serveSite({ port: 0 });
    try {
      expect(built.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(siteDir()).toMatch(/dist[/\\]site[/\\]$/);
      const manifest = (await (await fetch(new URL('models/codiff-lite/manifest.json', built.url))).json()) as { name: string; id: string; files: { path: string; bytes: number }[] };
      expect(manifest.name).toBe('codiff-lite');
      expect(manifest.id).toMatch(/^[0-9a-f]{16}$/);
      for (const f of manifest.files) {
        const head = await fetch(new URL(`models/codiff-lite/${f.path}`, built.url), { method: 'HEAD' });
        expect(Number(head.headers.get('content-length')), f.path).toBe(f.bytes);
      }
    } finally {
      await built.close();
    }
  });

  it('the npm package leaves the model weights out (they are @codiff/model-lite\'s) and the server serves them from there', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: fileURLToPath(new URL('..', import.meta.url)) });
    const packed = (JSON.parse(stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
    expect(packed).toContain('dist/site/models/codiff-lite/manifest.json');
    expect(packed.filter((p) => p.endsWith('.safetensors'))).toEqual([]);
    // A site folder as installed: the manifest, no weights.
    const installed = await mkdtemp(join(tmpdir(), 'codiff-site-installed-'));
    await cp(siteDir(), installed, { recursive: true, filter: (src) => !src.endsWith('.safetensors') });
    const served = await serveSite({ dir: installed, port: 0 });
    try {
      const weights = 'unet/diffusion_pytorch_model.safetensors';
      const got = new Uint8Array(await (await fetch(new URL(`models/codiff-lite/${weights}`, served.url))).arrayBuffer());
      expect(Buffer.from(got).equals(await readFile(join(liteModelDir(), weights)))).toBe(true);
      // Only the model's own files: an encoded "../" does not leave its folder either.
      expect(await rawStatus(served.url, '/models/codiff-lite/..%2fpackage.json')).toBe(404);
    } finally {
      await served.close();
      await rm(installed, { recursive: true, force: true });
    }
  }, 120_000);
});

