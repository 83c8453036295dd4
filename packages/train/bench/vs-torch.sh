#!/usr/bin/env bash
# Stage-1 step time on the lite configuration at batch 8, ours (wasm, 1 and 2 threads) against PyTorch CPU
# (Debian's python3-torch, 1 and 2 threads) on the same architecture, one run; then the peak memory of the full
# (official) CaVE forward + backward at batch 1, 256². Each measurement is its own process (wasm threads are fixed
# at start-up; peak RSS is per process). Results: stdout and .bench/stage1.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p ../../.bench
out=../../.bench/stage1.jsonl
: > "$out"
lite=(--channels 16,32,64,128 --blocks 2 --patch 64 --batch 8 --steps 5)
full=(--channels 64,128,256,512 --blocks 4 --patch 256 --batch 1 --steps 1)
torch_python=/usr/bin/python3
# Debian's default libblas3 is the reference BLAS; `apt-get install libopenblas0-pthread` gives PyTorch a real one.
if ! readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu | grep -q openblas; then
  echo "warning: PyTorch is using the reference BLAS (apt-get install libopenblas0-pthread for a fair comparison)" >&2
fi
for threads in 1 2; do
  npx tsx bench/stage1-step.ts "${lite[@]}" --threads "$threads" | tee -a "$out"
  OPENBLAS_NUM_THREADS=$threads "$torch_python" bench/torch_stage1_step.py "${lite[@]}" --threads "$threads" | tee -a "$out"
done
npx tsx bench/stage1-step.ts "${full[@]}" --threads 2 | tee -a "$out"
OPENBLAS_NUM_THREADS=2 "$torch_python" bench/torch_stage1_step.py "${full[@]}" --threads 2 | tee -a "$out"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const lite = rows.filter((r) => r.patch === 64);
for (const t of [1, 2]) {
  const ours = lite.find((r) => r.backend === "wasm" && r.threads === t), torch = lite.find((r) => r.backend === "torch-cpu" && r.threads === t);
  console.log(`lite, batch 8, ${t} thread(s): ours ${ours.medianStepMs.toFixed(0)} ms, PyTorch ${torch.medianStepMs.toFixed(0)} ms per step: ratio ${(ours.medianStepMs / torch.medianStepMs).toFixed(2)}`);
}
const full = rows.filter((r) => r.patch === 256);
for (const r of full) console.log(`official CaVE, batch 1, 256², forward + backward + Adam: ${r.backend} ${r.medianStepMs.toFixed(0)} ms, peak RSS ${r.peakRssMiB} MiB`);
' "$out"
