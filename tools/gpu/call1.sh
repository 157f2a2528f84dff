#!/usr/bin/env bash
# GPU run, part 1 (a host with 2 GPUs; carry .whl from tools/gpu/bundle.sh). Every lesson notebook under nbval
# with the Colab stack on the tiny model (GPU 0); the packing study, then notebooks 01-08 inside a T4's envelope
# (GPU 1). Logs and JUnit reports go to $OUT.
set -uo pipefail
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false COURSE_MODEL=tiny COURSE_CACHE=/tmp/cache
[ "$(cat /tmp/site/.bundle 2>/dev/null)" = "$(ls -l .whl/wheels | md5sum)" ] || tools/gpu/install.sh .whl > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH UNSLOTH_LLAMA_CPP_PATH=/tmp/llama.cpp
python3 -c "from helpers.tiny import tiny_model_path; print(tiny_model_path())" > "$OUT/tiny.log" 2>&1
nb() { python3 -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider -p tools.nbval_save "$@"; }
( export CUDA_VISIBLE_DEVICES=0 COURSE_OUTPUT=/tmp/out0
  SECONDS=0; timeout 380 bash -c "$(declare -f nb); nb ${NOTEBOOKS:-notebooks/0*.ipynb} --junitxml=$OUT/nbval.xml --nbval-save-dir $OUT/executed-gpu" > "$OUT/nbval.log" 2>&1
  echo "exit $? after $SECONDS s" >> "$OUT/nbval.log" ) &
( export CUDA_VISIBLE_DEVICES=1 COURSE_OUTPUT=/tmp/out1
  if [ -z "${SKIP_PACKING:-}" ]; then
    SECONDS=0; timeout 150 python3 -m tools.packing_study --model tiny --out /tmp/packing > "$OUT/packing.log" 2>&1
    echo "exit $? after $SECONDS s" >> "$OUT/packing.log"
  fi
  SECONDS=0; PYTHONPATH=$PWD/tools/t4_envelope:$PWD:/tmp/site timeout 380 bash -c "$(declare -f nb); nb ${T4_NOTEBOOKS:-notebooks/0[1-8]*.ipynb} --junitxml=$OUT/t4.xml --nbval-save-dir $OUT/executed-t4" > "$OUT/t4.log" 2>&1
  echo "exit $? after $SECONDS s" >> "$OUT/t4.log" ) &
wait
for f in "$OUT"/*.log; do echo "== $f"; tail -4 "$f"; done
