#!/usr/bin/env bash
# GPU run, part 8 (2 GPUs): where a training step's GPU time goes. The benchmark at 8 x 1 with padded batches, one
# path per GPU (GPU 0 Unsloth, GPU 1 plain), with torch.profiler over step 4 (after 3 warm-up steps):
# profile-PATH.md sums the kernel time by kind (matrix multiply, attention, 4-bit dequantize, copies, fused, other).
set -uo pipefail
source tools/gpu/common.sh
ensure_8b
bench=(python3 -m tools.bench --size 8b --model-dir $m8b --timed-steps 2 --warmup-steps 3 --new-tokens 8
       --padding-free false --batch ${BATCH:-8} --grad-accum 1 --profile-step 4)
( export CUDA_VISIBLE_DEVICES=0
  timeout $(( ${DEADLINE:-400} - SECONDS )) "${bench[@]}" --paths unsloth --out /tmp/prof > "$OUT/prof-unsloth.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=1
  timeout $(( ${DEADLINE:-400} - SECONDS )) "${bench[@]}" --paths hf --out /tmp/prof-hf > "$OUT/prof-hf.log" 2>&1 ) &
wait
cp /tmp/prof/profile-unsloth.md /tmp/prof-hf/profile-hf.md "$OUT/" 2>/dev/null
for f in /tmp/prof/profile-unsloth.md /tmp/prof-hf/profile-hf.md; do echo "== $f"; cat $f 2>/dev/null; done
grep -ahE "Error|Traceback" "$OUT"/prof-*.log | sort | uniq -c | head
echo "done after $SECONDS s"
