#!/usr/bin/env bash
# GPU run, part 4 (2 GPUs): why two GPUs gave less than 2x with the config's offloaded checkpointing, and one more
# benchmark configuration. GPU 1: the benchmark at batch 8 x 1 with standard checkpointing (both paths; NO_BENCH=1
# skips it). GPU 0 meanwhile: the packed workload on one GPU with checkpointing True, then 'unsloth' (offloaded to
# CPU RAM). Then the same workload on two GPUs with True (NCCL_DEBUG=INFO says which transport NCCL used).
# PACKING= (empty) runs the course rows instead of packed ones; STEPS sets the steps (default 20).
set -uo pipefail
source tools/gpu/common.sh
ensure_8b
nvidia-smi topo -m > "$OUT/topo.log" 2>&1
packed=(train --config configs/llama3-8b-t4.yaml --model $m8b --report-to none --no-progress --max-steps ${STEPS:-20} ${PACKING---packing})
[ -n "${NO_BENCH:-}" ] || ( export CUDA_VISIBLE_DEVICES=1
  timeout 330 python3 -m tools.bench --size 8b --model-dir $m8b --timed-steps 8 --warmup-steps 2 --new-tokens 128 \
    --configs 8x1:true --out /tmp/bench-c > "$OUT/bench-c.log" 2>&1 ) &
( export CUDA_VISIBLE_DEVICES=0
  for gc in True unsloth; do
    timeout 160 python3 -m tools.cli "${packed[@]}" --use-gradient-checkpointing $gc --output-dir /tmp/one-gc-$gc \
      > "$OUT/gc-$gc-1gpu.log" 2>&1
  done ) &
wait
NCCL_DEBUG=INFO timeout 200 python3 -m accelerate.commands.launch --multi_gpu --num_processes 2 -m tools.cli "${packed[@]}" \
  --use-gradient-checkpointing True --output-dir /tmp/two-gc-true > "$OUT/gc-true-2gpu.log" 2>&1
grep -hE "NCCL INFO (Channel 00|.*via|Using network|P2P)" "$OUT/gc-true-2gpu.log" | head -8
for f in "$OUT"/*.log; do echo "== $f"; grep -v "NCCL INFO" "$f" | tail -4; done
