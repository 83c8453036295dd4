#!/usr/bin/env bash
# Full-size restore, ours (wasm, 1 and 2 threads) against PyTorch CPU (Debian's python3-torch, same threads) on the
# same SD 2.1-base architecture and the same weights, in one run: seconds per megapixel and their ratio, and how
# many 8-bit output values the two implementations agree on. Each measurement is its own process (wasm threads are
# fixed at start-up; peak RSS is per process), timed on its first restore as a user's would be.
# PyTorch needs a real BLAS for its Linear layers: Debian's default libblas3 is the reference implementation, ~30×
# slower; `apt-get install libopenblas0-pthread` switches the libblas.so.3 alternative to OpenBLAS.
# Results: stdout and .bench/restore-vs-torch.jsonl. Sizes: SIZES (default "256 512").
set -euo pipefail
cd "$(dirname "$0")/.."
root=../..
model=$root/.bench/sd21-random
out=$root/.bench/restore-vs-torch.jsonl
torch_python=/usr/bin/python3
mkdir -p "$root/.bench"
: > "$out"
if ! readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu | grep -q openblas; then
  echo "warning: PyTorch is using the reference BLAS (apt-get install libopenblas0-pthread for a fair comparison)" >&2
fi
"$torch_python" bench/torch_codiff.py check-golden "$root/../shared/golden"
[ -f "$model/proj.safetensors" ] || "$torch_python" bench/torch_codiff.py make-model "$model"
for size in ${SIZES:-256 512}; do
  for threads in 1 2; do
    npx tsx bench/restore-sd.ts --sizes "$size" --threads "$threads" --model "$model" --save "$root/.bench/ours-$threads" | tee -a "$out"
    OPENBLAS_NUM_THREADS=$threads "$torch_python" bench/torch_codiff.py restore "$model" --size "$size" --threads "$threads" \
      --save "$root/.bench/torch-$threads-$size.rgb" | tee -a "$out"
  done
done
node -e '
const fs = require("fs");
const [file, dir] = process.argv.slice(1);
const rows = fs.readFileSync(file, "utf8").trim().split("\n").map(JSON.parse);
for (const r of rows.filter((r) => r.backend === "wasm")) {
  const t = rows.find((q) => q.backend === "torch-cpu" && q.size === r.size && q.threads === r.threads);
  const a = fs.readFileSync(`${dir}/ours-${r.threads}-${r.size}.rgb`), b = fs.readFileSync(`${dir}/torch-${r.threads}-${r.size}.rgb`);
  let same = 0, worst = 0;
  for (let i = 0; i < a.length; i++) (a[i] === b[i] ? same++ : (worst = Math.max(worst, Math.abs(a[i] - b[i]))));
  console.log(`${r.size}², ${r.threads} thread(s): ours ${r.secondsPerMegapixel} s/MP, PyTorch ${t.secondsPerMegapixel} s/MP: ratio ${(r.secondsPerMegapixel / t.secondsPerMegapixel).toFixed(2)}; ` +
    `stages ours ${JSON.stringify(r.stageSeconds)}, PyTorch ${JSON.stringify(t.stageSeconds)}; ` +
    `${(100 * same / a.length).toFixed(2)} % of 8-bit values equal, worst difference ${worst}`);
}
' "$out" "$root/.bench"
