#!/usr/bin/env bash
# Lesson notebooks under nbval on a GPU host with the Colab stack (carry .whl from tools/gpu/bundle.sh), each in its
# own pytest session, in order, all stopping by DEADLINE seconds (default 540) after the start.
#   NOTEBOOKS="04 07" MODEL=8b ENVELOPE=t4 bash tools/gpu/notebooks.sh
# MODEL=8b (default): the faithful Llama-3-8B stand-in (tools/bench.py build_random_model: random weights, Llama 3's
#   tokenizer, zero rows where the real base has untrained ones), and its Instruct stand-in for notebook 07
#   (COURSE_CHAT_MODEL), both built on this host. MODEL=tiny, smollm2 or a path: that model.
# ENVELOPE=t4 (default): inside a free Colab T4's envelope: float16 and 15 GiB of GPU memory (tools/t4_envelope),
#   2 CPUs (taskset) and 12.67 GiB of RAM (a cgroup where the host allows one; tools/gpu/watch.py measures the peak
#   either way, and the disk used). ENVELOPE=none: the whole GPU and host.
# COURSE_MAX_STEPS=N: notebooks 04 and 07 (their MAX_STEPS parameter) and the catch-up cells train N steps.
# Logs go to $OUT; executed notebooks and JUnit reports to $OUT/executed.tgz; peak GPU memory per notebook in the log.
set -uo pipefail
source tools/gpu/common.sh
case ${MODEL:=8b} in
  8b) ensure_8b; export COURSE_MODEL=$m8b COURSE_CHAT_MODEL=$m8b-instruct ;;
  *) export COURSE_MODEL=$MODEL ;;
esac
path=$PYTHONPATH cpus=()
[ "${ENVELOPE:=t4}" = t4 ] && path=$PWD/tools/t4_envelope:$PWD:$PYTHONPATH cpus=(taskset -c 0,1 env OMP_NUM_THREADS=2)
end=$((SECONDS + ${DEADLINE:-540})); mkdir -p /tmp/executed
for n in ${NOTEBOOKS:-00 01 02 03 04 05 06 07 08}; do
  nb=(notebooks/${n}_*.ipynb) left=$((end - SECONDS)) start=$SECONDS label=$ENVELOPE-$n
  [ $left -gt 20 ] || { echo "$n: not run (deadline)" >> "$OUT/notebooks.log"; continue; }
  COURSE_OUTPUT=/tmp/out-$ENVELOPE python3 tools/gpu/watch.py "$n ${nb[0]} ($MODEL, envelope $ENVELOPE)" -- \
    "${cpus[@]}" env PYTHONPATH=$path timeout $left python3 -m pytest --nbval-lax --nbval-current-env \
    -p no:cacheprovider -p tools.nbval_save "${nb[0]}" --junitxml="/tmp/executed/$label.xml" \
    --nbval-save-dir "/tmp/executed/$ENVELOPE" >> "$OUT/notebooks.log" 2>&1
done
tar -C /tmp/executed -czf "$OUT/executed.tgz" . 2>/dev/null
grep -E "exit -?[0-9]+ after|not run|passed|failed" "$OUT/notebooks.log" | tail -30
