// Packs the WebGPU restore benchmark for a GPU machine that has neither Node nor the npm registry (the lent device
// machines): Node itself (xz), Dawn (the `webgpu` package's Linux build), one esbuild bundle of the benchmark with
// TF.js and the @codiff packages inside, the Vulkan loader from Debian, and run.sh. Everything goes to
// .device-pack/ at the repository root (ignored by git; about 40 MB), which `run` carries.
//   node packages/pipeline/bench/device/pack.mjs && (device) bash .device-pack/run.sh
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../../..');
const out = join(root, '.device-pack');
const require = createRequire(import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'node_modules/webgpu/dist/linux-x64'), { recursive: true });
mkdirSync(join(out, 'node_modules/@tensorflow/tfjs-backend-webgpu'), { recursive: true });
mkdirSync(join(out, 'debs'), { recursive: true });

await build({
  entryPoints: [join(here, 'webgpu-entry.ts')],
  outfile: join(out, 'restore-sd.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  // Dawn is a native addon: it travels as its package. The CommonJS parts of the bundle need `require`.
  external: ['webgpu'],
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});

// @codiff/nn imports the WebGPU backend by name once navigator.gpu exists; the bundle already registered it.
const shim = join(out, 'node_modules/@tensorflow/tfjs-backend-webgpu');
writeFileSync(join(shim, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-backend-webgpu', type: 'module', main: 'index.js' }));
writeFileSync(join(shim, 'index.js'), '// Registered by the bundle (restore-sd.mjs) before this is imported.\nexport {};\n');

const webgpu = dirname(require.resolve('webgpu/package.json'));
for (const f of ['package.json', 'index.js', 'dist/linux-x64/dawn.node']) copyFileSync(join(webgpu, f), join(out, 'node_modules/webgpu', f));
execFileSync('sh', ['-c', `xz -T2 -6 -c "${process.execPath}" > "${join(out, 'node.xz')}"`]);
execFileSync('apt-get', ['download', 'libvulkan1'], { cwd: join(out, 'debs'), stdio: 'ignore' });
writeFileSync(join(out, 'run.sh'), `#!/usr/bin/env bash
# On the device: Node and the Vulkan loader unpacked, the NVIDIA Vulkan driver named, then the benchmark
# (arguments as bench/restore-sd.ts; default: 512 and 1024 on WebGPU).
set -euo pipefail
cd "$(dirname "$0")"
[ -x node ] || xz -dc node.xz > node && chmod +x node
for f in debs/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -z "\${VK_ICD_FILENAMES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
if [ $# -eq 0 ]; then set -- --sizes 512,1024; fi
exec ./node restore-sd.mjs --backend webgpu "$@"
`);
console.log(out);
