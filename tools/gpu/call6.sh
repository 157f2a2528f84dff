#!/usr/bin/env bash
# GPU run, part 6 (2 GPUs): three more ways to a faster Unsloth step, all with padded (compiled-block) batches.
# GPU 0: the benchmark at batch 16 x 1, both paths (the plain path needs about 42 GiB there).
# GPU 1: the Unsloth path alone at 8 x 1 with per-block CUDA graphs (UNSLOTH_BLOCK_CUDAGRAPHS=1: the rows are all
# 2,048 tokens, so the shapes are static), then with inductor's coordinate-descent tuning (UNSLOTH_COMPILE_MAXIMUM=1).
set -uo pipefail
source tools/gpu/common.sh
ensure_8b
bench=(python3 -m tools.bench --size 8b --model-dir $m8b --timed-steps 8 --warmup-steps 2 --new-tokens 128 --padding-free false)
( export CUDA_VISIBLE_DEVICES=0
  timeout $(( ${DEADLINE:-540} - SECONDS )) "${bench[@]}" --configs ${GPU0:-16x1:unsloth} --out /tmp/bench-16 > "$OUT/bench-16.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  UNSLOTH_BLOCK_CUDAGRAPHS=1 timeout 240 "${bench[@]}" --paths unsloth --batch 8 --grad-accum 1 --out /tmp/bench-graphs \
    > "$OUT/bench-graphs.log" 2>&1
  UNSLOTH_COMPILE_MAXIMUM=1 timeout $(( ${DEADLINE:-540} - SECONDS )) "${bench[@]}" --paths unsloth --batch 8 --grad-accum 1 \
    --out /tmp/bench-max > "$OUT/bench-max.log" 2>&1 ) &
wait
for d in /tmp/bench-16 /tmp/bench-graphs /tmp/bench-max; do
  [ -d $d ] || continue; echo "== $d"; cat $d/sweep.md $d/bench.md $d/*/bench.md 2>/dev/null
done
grep -ahE "CUDA graph|cudagraph|Error|error|Traceback" "$OUT"/bench-*.log | sort | uniq -c | head -20
echo "done after $SECONDS s"
