#!/usr/bin/env bash
# GPU run, part 1 (a host with 2 GPUs; carry .whl from tools/gpu/bundle.sh). Lesson notebooks under nbval with the
# Colab stack on the tiny model: the list GPU0 on GPU 0 and GPU1 on GPU 1, each in order; an item "t4:NN" runs
# notebook NN inside a T4's envelope (tools/t4_envelope). Each notebook is its own pytest session, so one that runs
# out of time still leaves the others' JUnit reports; all stop by DEADLINE seconds (default 540) after the start.
# Logs go to $OUT; the executed notebooks and JUnit reports to $OUT/executed.tgz (the device returns few files).
#   GPU0="04 06 07 08" GPU1="t4:04 t4:07 t4:08" bash tools/gpu/call1.sh          (default: all, plain and T4)
set -uo pipefail
export COURSE_MODEL=tiny
source tools/gpu/common.sh
python3 -c "import os; from helpers.tiny import tiny_model_path; print(tiny_model_path()); print('cpus', os.cpu_count(), len(os.sched_getaffinity(0)))" > "$OUT/host.log" 2>&1
cat /sys/fs/cgroup/cpu.max >> "$OUT/host.log" 2>/dev/null
end=$((SECONDS + ${DEADLINE:-540}))
# run_notebooks GPU ITEMS...: each notebook in its own pytest session, with the time left before the deadline
run_notebooks() {
  local gpu=$1; shift; mkdir -p /tmp/executed
  for item in "$@"; do
    local n=${item#t4:} label=gpu$gpu path=$PYTHONPATH start=$SECONDS
    [ "$item" != "$n" ] && label=t4-gpu$gpu path=$PWD/tools/t4_envelope:$PWD:$PYTHONPATH
    local nb=(notebooks/${n}_*.ipynb) left=$((end - SECONDS))
    [ $left -gt 20 ] || { echo "$item: not run (deadline)" >> "$OUT/gpu$gpu.log"; continue; }
    PYTHONPATH=$path COURSE_OUTPUT=/tmp/out-$label timeout $left python3 -m pytest --nbval-lax --nbval-current-env \
      -p no:cacheprovider -p tools.nbval_save "${nb[0]}" --junitxml="/tmp/executed/$label-$n.xml" \
      --nbval-save-dir "/tmp/executed/$label" >> "$OUT/gpu$gpu.log" 2>&1
    echo "$item ${nb[0]}: exit $? after $((SECONDS - start)) s" >> "$OUT/gpu$gpu.log"
  done
}
all="00 01 02 03 04 05 06 07 08"
( export CUDA_VISIBLE_DEVICES=0; run_notebooks 0 ${GPU0:-$all} ) &
( export CUDA_VISIBLE_DEVICES=1; run_notebooks 1 ${GPU1:-$(for n in ${all#00 }; do printf 't4:%s ' $n; done)} ) &
wait
tar -C /tmp/executed -czf "$OUT/executed.tgz" . 2>/dev/null
for f in "$OUT"/*.log; do echo "== $f"; grep -E "exit|not run|passed|failed|Error|cpus" "$f" | tail -12; done
