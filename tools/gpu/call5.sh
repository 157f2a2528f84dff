#!/usr/bin/env bash
# GPU run, part 5 (2 GPUs): does Unsloth's compiled-block path close the gap to 2x? The benchmark's rows are full
# 2,048-token blocks, so padding-free removes no pad tokens, yet it makes Unsloth skip its per-block compile
# (unsloth/utils/padding_choice.py); `--padding-free false` keeps padded batches (none padded) and the compile.
# GPU 0: $GPU0 as Unsloth decides (padding-free on an H100/H200), then $GPU0B with padding_free false.
# GPU 1: $GPU1 with padding_free false. Both paths (Unsloth and plain) for every configuration.
set -uo pipefail
source tools/gpu/common.sh
ensure_8b
bench=(python3 -m tools.bench --size 8b --model-dir $m8b --timed-steps 8 --warmup-steps 2 --new-tokens 128)
( export CUDA_VISIBLE_DEVICES=0
  timeout ${T0:-240} "${bench[@]}" --configs ${GPU0:-8x1:unsloth} --out /tmp/bench-auto > "$OUT/bench-auto.log" 2>&1
  [ -z "${GPU0B:-}" ] || timeout $(( ${DEADLINE:-500} - SECONDS )) "${bench[@]}" --padding-free false --configs $GPU0B \
    --out /tmp/bench-padded-b > "$OUT/bench-padded-b.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout $(( ${DEADLINE:-500} - SECONDS )) "${bench[@]}" --padding-free false --configs ${GPU1:-8x1:unsloth} \
    --out /tmp/bench-padded > "$OUT/bench-padded.log" 2>&1 ) &
wait
for d in /tmp/bench-auto /tmp/bench-padded /tmp/bench-padded-b; do
  [ -d $d ] || continue; echo "== $d"; cat $d/sweep.md 2>/dev/null; cat $d/*/bench.md 2>/dev/null; cp -r $d "$OUT/" 2>/dev/null
done
grep -ahE "Padded batches|Padding-free|compiling each|Error|error" "$OUT"/bench-*.log | sort | uniq -c | head -20
echo "done after $SECONDS s"
