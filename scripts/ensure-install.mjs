// Set-up for a fresh machine, run by `npm test` and `npm run demo` before anything else:
//  1. `npm ci` when node_modules is missing or older than package-lock.json;
//  2. Debian's libjpeg-turbo-progs (cjpeg/djpeg), which the codec's cross-check tests compare against, when
//     running as root with apt-get (set CODIFF_NO_APT=1 to skip; those tests are then skipped with a warning).
// Plain Node with no dependencies, so it works before anything is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts }).status === 0;
const quiet = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;

const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(join(root, 'package-lock.json')).mtimeMs) {
  console.log('codiff: installing dependencies (npm ci)…');
  if (!run('npm', ['ci', '--no-audit', '--no-fund'])) {
    console.error('codiff: npm ci failed');
    process.exit(1);
  }
}

if (!quiet('cjpeg', ['-version']) && !process.env.CODIFF_NO_APT) {
  const root_ = typeof process.getuid === 'function' && process.getuid() === 0;
  if (root_ && quiet('apt-get', ['--version'])) {
    console.log('codiff: installing libjpeg-turbo-progs (cjpeg/djpeg) for the libjpeg cross-check tests…');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'libjpeg-turbo-progs'], { env });
    if (!install() && !(run('apt-get', ['update', '-q'], { env }) && install())) {
      console.warn('codiff: could not install libjpeg-turbo-progs; cjpeg/djpeg cross-checks will be skipped');
    }
  } else {
    console.warn('codiff: cjpeg/djpeg not found (Debian: apt-get install libjpeg-turbo-progs); those cross-checks will be skipped');
  }
}
