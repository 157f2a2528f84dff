# Two entry points (see README):  make course  runs every notebook headless;  make test  runs the tests.
# Each sets up its own virtual environment on first use (.venv, pinned CPU stack; no GPU needed).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup course test bench docs docs-serve docs-screenshots

$(STAMP): requirements/cpu.txt requirements/unsloth.txt requirements/docs.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/cpu.txt
	$(PY) -m pip install -q -r requirements/docs.txt
	$(PY) -m pip install -q --no-deps -r requirements/unsloth.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c "import torch, unsloth; assert not torch.version.cuda or torch.cuda.is_available(), 'a CUDA torch on a CPU machine'"
	touch $@

setup: $(STAMP)

course: setup
	$(PY) -m tools.run_course --out outputs/course

test: setup
	out=$$(mktemp -d) && COURSE_OUTPUT=$$out $(PY) -m pytest tests notebooks --doctest-modules helpers tools --nbval-lax --nbval-current-env; \
	  status=$$?; rm -rf $$out; exit $$status

bench: setup
	$(PY) -m tools.bench --size tiny --seq-len 128 --timed-steps 5 --warmup-steps 1 --new-tokens 32

docs: setup
	$(PY) -m mkdocs build --strict

docs-serve: setup
	$(PY) -m mkdocs serve -a 127.0.0.1:8000

docs-screenshots: setup
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends chromium)
	$(PY) scripts/screenshot_docs.py --out outputs/docs-screenshots
