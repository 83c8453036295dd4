// Set-up for a fresh machine, run by `npm test` and `npm run demo` before anything else:
//  1. `npm ci` when node_modules is missing or older than package-lock.json;
//  2. Debian packages the tests compare against or run on, when running as root with apt-get (set
//     CODIFF_NO_APT=1 to skip; the tests that need them are then skipped with a warning):
//     - libjpeg-turbo-progs: cjpeg/djpeg, the JPEG codec's cross-checks;
//     - chromium (for its SwiftShader Vulkan driver) and libvulkan1: WebGPU without a GPU, through Dawn;
//     - jpegqs: the classical JPEG artifact remover `codiff eval --compare jpegqs` runs as a baseline.
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

const hasVulkanLoader = () => spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout?.includes('libvulkan.so.1') ?? false;
const systemTools = [
  { purpose: 'cjpeg/djpeg for the JPEG cross-checks', packages: ['libjpeg-turbo-progs'], present: () => quiet('cjpeg', ['-version']) },
  { purpose: 'jpegqs, the classical baseline of codiff eval', packages: ['jpegqs'], present: () => quiet('sh', ['-c', 'command -v jpegqs']) },
  {
    purpose: 'SwiftShader + Vulkan loader for the WebGPU tests',
    packages: ['chromium', 'libvulkan1'],
    present: () => existsSync('/usr/lib/chromium/vk_swiftshader_icd.json') && hasVulkanLoader(),
  },
];
const missing = systemTools.filter((t) => !t.present());
if (missing.length > 0 && !process.env.CODIFF_NO_APT) {
  const packages = missing.flatMap((t) => t.packages);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && quiet('apt-get', ['--version'])) {
    console.log(`codiff: installing ${packages.join(', ')} (${missing.map((t) => t.purpose).join('; ')})…`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], { env });
    if (!install() && !(run('apt-get', ['update', '-q'], { env }) && install())) {
      console.warn(`codiff: could not install ${packages.join(', ')}; the tests that need them will be skipped`);
    }
  } else {
    console.warn(`codiff: missing ${packages.join(', ')} (${missing.map((t) => t.purpose).join('; ')}); those tests will be skipped`);
  }
}
