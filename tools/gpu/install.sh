#!/usr/bin/env bash
# On the offline GPU host: install the bundle from tools/gpu/bundle.sh into /tmp/site, the llama.cpp export
# tools into /tmp/llama.cpp, and print the versions that matter. Then:
#   export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH HF_HUB_OFFLINE=1 UNSLOTH_LLAMA_CPP_PATH=/tmp/llama.cpp
set -euo pipefail
bundle=${1:-.whl}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$bundle"/wheels/*.whl
ls -l "$bundle"/wheels | md5sum > /tmp/site/.bundle  # the call scripts reinstall when the bundle changes
mkdir -p /tmp/llama.cpp/src /tmp/llama.cpp/ggml /tmp/llama.cpp/common
tar -C /tmp/llama.cpp -xzf "$bundle/llama.cpp.tgz"
if [ -d "$bundle/cache" ]; then mkdir -p /tmp/cache && cp -r "$bundle/cache/." /tmp/cache/; fi  # the tiny model, prebuilt
PYTHONPATH=/tmp/site python3 - <<'PY'
from importlib import metadata
import sys, torch
names = ["torch", "triton", "unsloth", "unsloth_zoo", "transformers", "trl", "peft", "accelerate", "bitsandbytes",
         "datasets", "pyarrow", "huggingface_hub", "tokenizers", "protobuf", "sentencepiece", "numpy", "pandas",
         "ipykernel", "ipython", "jupyter_client", "nbval", "llama_cpp_python", "xformers"]
def version(n):
    try: return metadata.version(n)
    except metadata.PackageNotFoundError: return "-"
print(f"python {sys.version.split()[0]}; GPUs: {[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}")
print(" ".join(f"{n}={version(n)}" for n in names))
PY
