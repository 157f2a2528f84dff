#!/usr/bin/env bash
# GPU run, part 4 (2 GPUs): why two GPUs give less than 2x, and one more benchmark configuration.
# GPU 1: the benchmark at batch 8 x 1 with standard checkpointing (both paths). GPU 0 meanwhile: the packed workload
# on one GPU with checkpointing true, then 'unsloth' (offloaded to CPU RAM). Then the same packed workload on two
# GPUs with checkpointing true. PACKING= (empty) runs the course rows instead; NO_BENCH=1 skips the benchmark (NCCL_DEBUG=INFO says which transport NCCL used). Link topology from nvidia-smi.
set -uo pipefail
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false COURSE_CACHE=/tmp/cache
[ "$(cat /tmp/site/.bundle 2>/dev/null)" = "$(ls -l .whl/wheels | md5sum)" ] || tools/gpu/install.sh .whl > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH m8b=/tmp/m8b
[ -f $m8b/config.json ] || CUDA_VISIBLE_DEVICES=0 python3 -c "
from pathlib import Path; from tools.bench import BenchConfig, build_random_model
build_random_model(BenchConfig(size='8b', model_dir=Path('$m8b')))" > "$OUT/build.log" 2>&1
echo "ready after $SECONDS s" >> "$OUT/build.log"
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
