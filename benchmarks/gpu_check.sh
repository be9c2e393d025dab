#!/usr/bin/env bash
# The GPU path, measured in one go (< 10 min on a CUDA machine; no model hub needed):
# SD 2.x / SDXL shapes with random weights, fp16 512² / 1024², raw diffusers vs the Studio
# worker with previews, it/s, VRAM peak, the memory budget, CUDA OOM handling, and the
# speed-ups worth having. Without CUDA it runs the CPU-sized smoke path (what CI runs).
#
#   bash benchmarks/gpu_check.sh            # GPU if there is one, else the smoke path
#   bash benchmarks/gpu_check.sh --smoke    # the smoke path anyway
#
# Results: the log and a JSON file in $OUT (or /tmp/studio-gpu-check/), named with the date;
# copy the figures, with the date and the GPU, into docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 QT_QPA_PLATFORM=offscreen
export TOKENIZERS_PARALLELISM=false
out="${OUT:-${TMPDIR:-/tmp}/studio-gpu-check}"
mkdir -p "$out"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mode=gpu
if [ "${1:-}" = "--smoke" ] || ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    mode=smoke
fi
echo "gpu_check: $mode run, $(date -u '+%Y-%m-%d %H:%M UTC')"
if [ "$mode" = gpu ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PY" benchmarks/gpu_check.py --json "$out/gpu_check-$stamp.json" "$@" 2>&1 \
        | tee "$out/gpu_check-$stamp.log"
else
    "$PY" benchmarks/gpu_check.py --smoke --json "$out/gpu_check-smoke-$stamp.json" 2>&1 \
        | tee "$out/gpu_check-smoke-$stamp.log"
fi
