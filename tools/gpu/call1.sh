#!/usr/bin/env bash
# GPU run, part 1 (a host with 2 GPUs; carry .whl from tools/gpu/bundle.sh). Lesson notebooks under nbval with the
# Colab stack on the tiny model: NOTEBOOKS on GPU 0 and, inside a T4's envelope, T4_NOTEBOOKS on GPU 1 (optionally
# after the packing study). Each notebook is its own pytest session, so one that runs out of time still leaves the
# others' JUnit reports and executed copies in $OUT; all stop by DEADLINE seconds (default 540) after the start.
#   NOTEBOOKS="04 06 07 08" T4_NOTEBOOKS="04 07 08" bash tools/gpu/call1.sh      (numbers; default: all)
set -uo pipefail
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false COURSE_MODEL=tiny COURSE_CACHE=/tmp/cache
[ "$(cat /tmp/site/.bundle 2>/dev/null)" = "$(ls -l .whl/wheels | md5sum)" ] || tools/gpu/install.sh .whl > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH UNSLOTH_LLAMA_CPP_PATH=/tmp/llama.cpp
python3 -c "from helpers.tiny import tiny_model_path; print(tiny_model_path())" > "$OUT/tiny.log" 2>&1
end=$((SECONDS + ${DEADLINE:-540}))
# run_notebooks LABEL NUMBERS...: each notebook in its own pytest session, with the time left before the deadline
run_notebooks() {
  local label=$1; shift
  for n in "$@"; do
    local nb=(notebooks/${n}_*.ipynb) left=$((end - SECONDS)) start=$SECONDS
    [ $left -gt 20 ] || { echo "$nb: not run (deadline)" >> "$OUT/$label.log"; continue; }
    timeout $left python3 -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider -p tools.nbval_save "${nb[0]}" \
      --junitxml="$OUT/$label-$n.xml" --nbval-save-dir "$OUT/executed-$label" >> "$OUT/$label.log" 2>&1
    echo "${nb[0]}: exit $? after $((SECONDS - start)) s" >> "$OUT/$label.log"
  done
}
all="00 01 02 03 04 05 06 07 08"
( export CUDA_VISIBLE_DEVICES=0 COURSE_OUTPUT=/tmp/out0; run_notebooks gpu ${NOTEBOOKS:-$all} ) &
( export CUDA_VISIBLE_DEVICES=1 COURSE_OUTPUT=/tmp/out1
  if [ -n "${PACKING:-}" ]; then
    SECONDS_0=$SECONDS; timeout 200 python3 -m tools.packing_study --model tiny --out /tmp/packing > "$OUT/packing.log" 2>&1
    echo "exit $? after $((SECONDS - SECONDS_0)) s" >> "$OUT/packing.log"
  fi
  export PYTHONPATH=$PWD/tools/t4_envelope:$PWD:/tmp/site; run_notebooks t4 ${T4_NOTEBOOKS:-${all#00 }} ) &
wait
for f in "$OUT"/*.log; do echo "== $f"; grep -E "exit|not run|passed|failed|Error" "$f" | tail -12; done
