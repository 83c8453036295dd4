// Packs WebGPU work for a GPU machine that has neither Node nor the npm registry (the lent device machines): Node
// itself and Dawn (the `webgpu` package's Linux build), both xz-compressed, esbuild bundles of the restore benchmark
// (restore-sd.mjs) and of the `codiff` CLI (codiff.mjs, with its data worker) with TF.js and the @codiff packages
// inside, the Vulkan loader from Debian, and run.sh. Everything goes to .device-pack/ at the repository root
// (ignored by git; about 28 MB), which `run` carries.
//   node scripts/device/pack.mjs && (device) bash .device-pack/run.sh restore-sd --sizes 512 | codiff train …
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const out = join(root, '.device-pack');
const require = createRequire(import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'node_modules/webgpu/dist/linux-x64'), { recursive: true });
mkdirSync(join(out, 'node_modules/@tensorflow/tfjs-backend-webgpu'), { recursive: true });
mkdirSync(join(out, 'debs'), { recursive: true });

const esm = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  mainFields: ['module', 'main'],
  // Dawn is a native addon: it travels as its package (resvg, for PNG charts, stays behind: SVG is enough there).
  external: ['webgpu', '@resvg/resvg-js'],
  // The CommonJS parts of the bundles need `require`.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
};
const xz = (from, to) => execFileSync('sh', ['-c', `xz -T2 -9e -c "${from}" > "${to}"`]);
// The bundles travel xz-compressed (5.4 MB → 0.8 MB for the CLI): run.sh unpacks them.
for (const [entry, name] of [['restore-sd-entry.ts', 'restore-sd.mjs'], ['codiff-entry.ts', 'codiff.mjs']]) {
  await build({ ...esm, entryPoints: [join(here, entry)], outfile: join(out, name) });
  xz(join(out, name), join(out, `${name}.xz`));
  rmSync(join(out, name));
}
// The training data loader starts workers from ./data-worker.js beside its module: here, beside codiff.mjs (ESM, as
// the repository's package.json says for .js files).
await build({ ...esm, entryPoints: [join(root, 'packages/train/src/data-worker.ts')], outfile: join(out, 'data-worker.js') });

// @codiff/nn imports the WebGPU backend by name once navigator.gpu exists; the bundle already registered it.
const shim = join(out, 'node_modules/@tensorflow/tfjs-backend-webgpu');
writeFileSync(join(shim, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-backend-webgpu', type: 'module', main: 'index.js' }));
writeFileSync(join(shim, 'index.js'), '// Registered by the bundles before this is imported.\nexport {};\n');

const webgpu = dirname(require.resolve('webgpu/package.json'));
for (const f of ['package.json', 'index.js']) copyFileSync(join(webgpu, f), join(out, 'node_modules/webgpu', f));
xz(join(webgpu, 'dist/linux-x64/dawn.node'), join(out, 'dawn.node.xz'));
// Node without its symbol tables: 99 → 86 MB, 21.9 MB compressed.
const node = join(out, 'node');
copyFileSync(process.execPath, node);
execFileSync('strip', [node]);
xz(node, join(out, 'node.xz'));
rmSync(node);
// NVIDIA's Vulkan driver (libGLX_nvidia) needs glvnd beside the loader, or Dawn finds no adapter.
execFileSync('apt-get', ['download', 'libvulkan1', 'libglvnd0', 'libglx0', 'libgl1', 'libegl1', 'libopengl0', 'libgles2'], { cwd: join(out, 'debs'), stdio: 'ignore' });
writeFileSync(join(out, 'run.sh'), `#!/usr/bin/env bash
# On the device: Node, Dawn and the Vulkan loader unpacked, the NVIDIA Vulkan driver named, then
#   run.sh restore-sd [args of bench/restore-sd.ts]   (on WebGPU; default sizes 512 and 1024)
#   run.sh codiff <command> [args]                     (the CLI; give --backend webgpu)
set -euo pipefail
cd "$(dirname "$0")"
[ -x node ] || { xz -dc node.xz > node && chmod +x node; }
for f in codiff.mjs restore-sd.mjs; do [ -f $f ] || xz -dc $f.xz > $f; done
dawn=node_modules/webgpu/dist/linux-x64/dawn.node
[ -f $dawn ] || xz -dc dawn.node.xz > $dawn
for f in debs/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -z "\${VK_ICD_FILENAMES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
what=\${1:?usage: run.sh restore-sd|codiff [args]}; shift
case $what in
  restore-sd) if [ $# -eq 0 ]; then set -- --sizes 512,1024; fi; exec ./node restore-sd.mjs --backend webgpu "$@" ;;
  codiff) exec ./node codiff.mjs "$@" ;;
  *) echo "run.sh: unknown $what (restore-sd or codiff)" >&2; exit 2 ;;
esac
`);
console.log(out);
