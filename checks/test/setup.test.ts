// What the README promises after its set-up: `codiff` runs from the repository, its CLI lines work as written,
// every tarball carries the licence, and benchmarks always measure (never replay nx's cache).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGES, ROOT } from './packages.js';

const cli = PACKAGES.find((p) => p.name === '@codiff/cli')!;

describe('the codiff command after set-up', () => {
  it('links a bin that exists before any build (committed, executable), so npm ci puts codiff on the PATH', () => {
    const target = cli.json.bin!.codiff;
    const tracked = execFileSync('git', ['ls-files', '--stage', join('packages/cli', target)], { cwd: ROOT, encoding: 'utf8' });
    expect(tracked).toMatch(/^100755 /);
    expect(realpathSync(join(ROOT, 'node_modules/.bin/codiff'))).toBe(join(cli.dir, target.replace(/^\.\//, '')));
    const help = spawnSync('npx', ['--no-install', 'codiff', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/Usage: codiff/);
  });

  it('runs every `npx codiff` line of the README’s command-line section as written', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').split('## The command line')[1].split('\n## ')[0];
    const lines = [...readme.matchAll(/^npx codiff (.+?)(?:\s+#.*)?$/gm)].map((m) => m[1].trim().split(/\s+/));
    expect(lines.length).toBeGreaterThanOrEqual(4);
    for (const args of lines) {
      const r = spawnSync('npx', ['--no-install', 'codiff', ...args], { cwd: ROOT, encoding: 'utf8' });
      expect(r.status, `npx codiff ${args.join(' ')}\n${r.stderr}`).toBe(0);
    }
  });
});

describe('published tarballs', () => {
  it('each carries the Apache-2.0 LICENSE', () => {
    const packed = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--workspaces'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as {
      name: string;
      files: { path: string }[];
    }[];
    for (const pkg of PACKAGES) {
      const tarball = packed.find((p) => p.name === pkg.name);
      expect(tarball?.files.map((f) => f.path), pkg.name).toContain('LICENSE');
      expect(readFileSync(join(pkg.dir, 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    }
  });
});

describe('benchmarks measure every time', () => {
  it('bench, fuzz and fullsize targets are never cached by nx', () => {
    const measuring = ['bench', 'fuzz', 'fullsize'];
    const projects = PACKAGES.filter((p) => {
      const scripts = JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')).scripts ?? {};
      return measuring.some((t) => t in scripts);
    });
    expect(projects.length).toBeGreaterThanOrEqual(3);
    for (const p of projects) {
      const name = p.name.replace('@codiff/', '');
      const shown = JSON.parse(execFileSync('npx', ['--no-install', 'nx', 'show', 'project', name, '--json'], { cwd: ROOT, encoding: 'utf8' }));
      for (const target of measuring.filter((t) => t in shown.targets)) expect(shown.targets[target].cache, `${name}:${target}`).toBe(false);
    }
  });
});

