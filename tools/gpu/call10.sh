#!/usr/bin/env bash
# GPU run, part 10 (2 GPUs): the loose end of the fourth session's call 1, whose packed reload log did not come back.
# `accelerate launch` DDP on the packed rows with standard checkpointing (STEPS, default 6), then `course infer`
# reloads the adapter rank 0 saved, on one GPU, and answers one question (the weights are random).
set -uo pipefail
source tools/gpu/common.sh
ensure_8b
timeout 200 python3 -m accelerate.commands.launch --multi_gpu --num_processes 2 -m tools.cli train \
  --config configs/llama3-8b-t4.yaml --model $m8b --report-to none --no-progress --max-steps ${STEPS:-6} --packing \
  --use-gradient-checkpointing True --output-dir /tmp/two-packed > "$OUT/ddp-packed-2gpu.log" 2>&1
echo "trained after $SECONDS s, exit $?"
CUDA_VISIBLE_DEVICES=0 timeout 120 python3 -m tools.cli infer --config configs/llama3-8b-t4.yaml --model $m8b \
  --output-dir /tmp/two-packed --instruction "Is 7 even or odd?" --max-new-tokens 8 > "$OUT/reload-packed.log" 2>&1
echo "reload exit $? after $SECONDS s"
find /tmp/two-packed -name "adapter_model.safetensors" | sort
cat /tmp/two-packed/train_metrics.json 2>/dev/null
echo "destroy_process_group warnings: $(grep -c destroy_process_group "$OUT/ddp-packed-2gpu.log")"
for f in "$OUT"/ddp-packed-2gpu.log "$OUT"/reload-packed.log; do echo "== $f"; grep -v "NCCL INFO" "$f" | tail -8; done
