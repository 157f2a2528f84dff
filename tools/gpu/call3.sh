#!/usr/bin/env bash
# GPU run, part 3 (2 GPUs): data-parallel training with `accelerate launch` against one GPU, on Llama-3-8B's
# architecture (random weights): the course config (notebook 04's recipe on the course rows) and the benchmark's
# workload (the course text packed into 2,048-token rows, --packing). tokens/s and memory per GPU from each run's
# train_metrics.json; the DDP adapter is saved once and reloaded by `course infer` (one answer; the weights are random).
#   bash tools/gpu/call3.sh          (COURSE_STEPS, PACKED_STEPS: training steps per run, default 20 and 12;
#                                     GC=True: standard gradient checkpointing instead of the config's "unsloth")
set -uo pipefail
source tools/gpu/common.sh
ensure_8b
course=(train --config configs/llama3-8b-t4.yaml --model $m8b --report-to none --no-progress ${GC:+--use-gradient-checkpointing $GC})
steps() { [ "$1" = course ] && echo "--max-steps ${COURSE_STEPS:-20}" || echo "--max-steps ${PACKED_STEPS:-12} --packing"; }
# one GPU each, side by side: the course rows on GPU 0, the packed rows on GPU 1
for w in course packed; do
  gpu=0; [ $w = packed ] && gpu=1
  CUDA_VISIBLE_DEVICES=$gpu timeout 240 python3 -m tools.cli "${course[@]}" $(steps $w) --output-dir /tmp/one-$w \
    > "$OUT/ddp-$w-1gpu.log" 2>&1 &
done
wait
for w in course packed; do
  timeout 240 python3 -m accelerate.commands.launch --multi_gpu --num_processes 2 -m tools.cli "${course[@]}" \
    $(steps $w) --output-dir /tmp/two-$w > "$OUT/ddp-$w-2gpu.log" 2>&1
done
for w in course packed; do  # reload each DDP adapter on one GPU and answer one question
  gpu=0; [ $w = packed ] && gpu=1
  CUDA_VISIBLE_DEVICES=$gpu timeout 150 python3 -m tools.cli infer --config configs/llama3-8b-t4.yaml --model $m8b \
    --output-dir /tmp/two-$w --instruction "Is 7 even or odd?" --max-new-tokens 8 > "$OUT/reload-$w.log" 2>&1 &
done
wait
python3 - > "$OUT/ddp-summary.log" 2>&1 <<'PY'
import json, pathlib
for run in ["one-course", "two-course", "one-packed", "two-packed"]:
    folder = pathlib.Path("/tmp") / run
    adapters = sorted(str(p.relative_to(folder)) for p in folder.rglob("adapter_model.safetensors"))
    metrics = json.loads((folder / "train_metrics.json").read_text()) if (folder / "train_metrics.json").exists() else {}
    print(run, json.dumps({"adapter files": adapters, **metrics}))
PY
grep -c "destroy_process_group" "$OUT"/ddp-*-2gpu.log
for f in "$OUT"/*.log; do echo "== $f"; tail -4 "$f"; done
