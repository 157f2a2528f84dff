# Sourced by the call scripts: install the bundle into /tmp/site once per bundle (tools/gpu/install.sh), set the
# environment, and `ensure_8b` builds Llama-3-8B's architecture with random weights at $m8b unless it is there
# (build.log says how many seconds the script had run when the model was ready).
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false COURSE_CACHE=/tmp/cache
[ "$(cat /tmp/site/.bundle 2>/dev/null)" = "$(ls -l .whl/wheels | md5sum)" ] || tools/gpu/install.sh .whl > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH UNSLOTH_LLAMA_CPP_PATH=/tmp/llama.cpp m8b=/tmp/m8b
ensure_8b() {  # the faithful base stand-in at $m8b and its Instruct stand-in at $m8b-instruct (tools/bench.py)
  [ -f $m8b-instruct/config.json ] || CUDA_VISIBLE_DEVICES=0 python3 -c "
from pathlib import Path; from tools.bench import BenchConfig, build_random_model
cfg = BenchConfig(size='8b', model_dir=Path('$m8b'))
build_random_model(cfg); build_random_model(cfg, instruct=True)" > "$OUT/build.log" 2>&1
  echo "ready after $SECONDS s" >> "$OUT/build.log"
}
