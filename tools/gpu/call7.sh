#!/usr/bin/env bash
# GPU run, part 7 (2 GPUs): the benchmark on the course's own rows (--data course: one short Alpaca example per row, as
# notebook 04 trains; Unsloth batches them padding-free, the plain path pads each batch; tokens/s counts the rows'
# tokens). GPU 0: $GPU0 (default: the course recipe, 2 x 4); GPU 1: $GPU1 (default: 8 x 1). Both paths each.
set -uo pipefail
source tools/gpu/common.sh
ensure_8b
bench=(python3 -m tools.bench --size 8b --model-dir $m8b --timed-steps ${STEPS:-20} --warmup-steps 3 --new-tokens 128 --data course)
( export CUDA_VISIBLE_DEVICES=0
  timeout $(( ${DEADLINE:-500} - SECONDS )) "${bench[@]}" --configs ${GPU0:-2x4:unsloth} --out /tmp/course-0 > "$OUT/course-0.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout $(( ${DEADLINE:-500} - SECONDS )) "${bench[@]}" --configs ${GPU1:-8x1:unsloth} --out /tmp/course-1 > "$OUT/course-1.log" 2>&1 ) &
wait
for d in /tmp/course-0 /tmp/course-1; do
  [ -d $d ] || continue; echo "== $d"; cat $d/sweep.md $d/*/bench.md 2>/dev/null
done
grep -ahE "Padded batches|Padding-free|Error|Traceback" "$OUT"/course-*.log | sort | uniq -c | head -20
echo "done after $SECONDS s"
