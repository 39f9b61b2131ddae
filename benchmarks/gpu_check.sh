#!/usr/bin/env bash
# Issue 15's GPU checks, as one script of at most 10 minutes on a lent GPU machine (see ../.library/device).
#   1-4. benchmarks/gpu_energy_check.py: NVML counter against integrated power on a 30 s burn (within 10%),
#        the counter's update period, idle power, the meter's overhead on a GPU step
#   5.   the default sweep on the GPU with measured energy (6 minutes at most)
#   6.   two trials sharing the GPU (gpu_fraction 0.5) adding up to the device's energy
# Ray and Optuna are not on the device image: carry them as wheels in .whl (the device README says how).
# Output goes to $OUT (or ./gpu_check_out); paste the figures into benchmarks/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,power.limit,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
timeout 150 python3 benchmarks/gpu_energy_check.py --burn-s 30 --idle-s 5 2>&1 | tee "$OUT/energy_check.txt"
timeout 90 python3 benchmarks/gpu_share_check.py --burn-s 20 --offset-s 5 2>&1 | tee "$OUT/share_check.txt"
timeout 360 python3 -m orchestrator sweep search_spaces/digits_resnet.yaml --name gpu --storage "$OUT/runs" \
  2>&1 | tail -40 | tee "$OUT/sweep.txt"
[ -f "$OUT/runs/gpu/report/report.md" ] && head -60 "$OUT/runs/gpu/report/report.md" | tee "$OUT/report_head.md"
