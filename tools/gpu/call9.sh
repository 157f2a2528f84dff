#!/usr/bin/env bash
# GPU run, part 9 (2 GPUs): the batch-shape switch (8 x 1 instead of the recipe's 2 x 4) inside a T4's envelope
# (tools/t4_envelope: 15 GiB, compute capability 7.5, no bf16, so float16): GPU 0 on the course's rows, GPU 1 on
# full 2,048-token rows. Peak reserved memory is the question; the speed is the host GPU's, not a T4's.
set -uo pipefail
source tools/gpu/common.sh
ensure_8b
t4() { PYTHONPATH=$PWD/tools/t4_envelope:$PWD:/tmp/site python3 tools/gpu/t4_8b.py --model-dir $m8b "$@"; }
( export CUDA_VISIBLE_DEVICES=0
  timeout 240 bash -c "$(declare -f t4); t4 --steps 10 --batch 8 --grad-accum 1 --out $OUT/t4-8x1-course.json" > "$OUT/t4-course.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout 240 bash -c "$(declare -f t4); t4 --steps 6 --packed --batch 8 --grad-accum 1 --out $OUT/t4-8x1-packed.json" > "$OUT/t4-packed.log" 2>&1 ) &
wait
for f in "$OUT"/t4-*.json; do echo "== $f"; cat "$f"; echo; done
for f in "$OUT"/t4-*.log; do echo "== $f"; grep -aE "Error|error:|Traceback|OutOfMemory" "$f" | head -5; done
echo "done after $SECONDS s"
