#!/usr/bin/env bash
# GPU run, part 2 (2 GPUs): Llama-3-8B's architecture with random weights, built here. GPU 0: notebook 04's recipe
# inside a T4's envelope (course data, then full 2,048-token rows) with the 4-bit load's memory; GPU 1 and then
# GPU 0: the benchmark sweep; then data-parallel training on 1 and 2 GPUs with the course command.
set -uo pipefail
source tools/gpu/common.sh
SECONDS=0
ensure_8b
bench() { python3 -m tools.bench --size 8b --model-dir $m8b --timed-steps 8 --warmup-steps 2 --new-tokens 128 "$@"; }
( export CUDA_VISIBLE_DEVICES=0
  PYTHONPATH=$PWD/tools/t4_envelope:$PWD:/tmp/site timeout 170 python3 tools/gpu/t4_8b.py --model-dir $m8b --steps 10 --out "$OUT/t4-8b.json" > "$OUT/t4-8b.log" 2>&1
  PYTHONPATH=$PWD/tools/t4_envelope:$PWD:/tmp/site timeout 130 python3 tools/gpu/t4_8b.py --model-dir $m8b --steps 6 --packed --out "$OUT/t4-8b-packed.json" >> "$OUT/t4-8b.log" 2>&1
  timeout 170 bash -c "$(declare -f bench); bench --configs 2x4:unsloth --out /tmp/bench-a" > "$OUT/bench-a.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 470 bash -c "$(declare -f bench); bench --configs 8x1:unsloth 4x2:true --out /tmp/bench-b" > "$OUT/bench-b.log" 2>&1 ) &
wait
for f in "$OUT"/*.log; do echo "== $f"; tail -6 "$f"; done
