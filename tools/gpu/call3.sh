#!/usr/bin/env bash
# GPU run, part 3 (2 GPUs): data-parallel training with `accelerate launch` against one GPU, on Llama-3-8B's
# architecture (random weights): the course config (notebook 04's recipe) and the benchmark's workload (the course
# text packed into 2,048-token rows). tokens/s, memory per GPU, one adapter saved and reloaded.
set -uo pipefail
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false COURSE_CACHE=/tmp/cache
[ "$(cat /tmp/site/.bundle 2>/dev/null)" = "$(ls -l .whl/wheels | md5sum)" ] || tools/gpu/install.sh .whl > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
export m8b=/tmp/m8b
[ -f $m8b/config.json ] || CUDA_VISIBLE_DEVICES=0 python3 -c "
from pathlib import Path; from tools.bench import BenchConfig, build_random_model
build_random_model(BenchConfig(size='8b', model_dir=Path('$m8b')))" > "$OUT/build.log" 2>&1
train() { python3 -m tools.cli train --config configs/llama3-8b-t4.yaml --model $m8b --report-to none --no-progress "$@"; }
ddp() { python3 -m accelerate.commands.launch --multi_gpu --num_processes 2 -m tools.cli train --config configs/llama3-8b-t4.yaml --model $m8b --report-to none --no-progress "$@"; }
for workload in course packed; do
  flags=(--max-steps 12); [ $workload = packed ] && flags=(--max-steps 6 --packing)
  CUDA_VISIBLE_DEVICES=0 timeout 200 bash -c "$(declare -f train); train ${flags[*]} --output-dir /tmp/one-$workload" > "$OUT/ddp-$workload-1gpu.log" 2>&1
  timeout 200 bash -c "$(declare -f ddp); ddp ${flags[*]} --output-dir /tmp/two-$workload" > "$OUT/ddp-$workload-2gpu.log" 2>&1
done
python3 - > "$OUT/ddp-adapters.log" 2>&1 <<'PY'
import json, pathlib
from safetensors.torch import load_file
for run in ["one-course", "two-course", "one-packed", "two-packed"]:
    folder = pathlib.Path("/tmp") / run
    adapters = sorted(str(p) for p in folder.rglob("adapter_model.safetensors") if "checkpoint" not in str(p))
    metrics = json.loads((folder / "train_metrics.json").read_text()) if (folder / "train_metrics.json").exists() else {}
    tensors = len(load_file(adapters[0])) if adapters else 0
    print(run, json.dumps({"adapters": adapters, "tensors": tensors, **metrics}))
PY
for f in "$OUT"/*.log; do echo "== $f"; tail -5 "$f"; done
