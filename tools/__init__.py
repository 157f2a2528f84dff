"""The course's tools: run from a shell or CI, never imported by a notebook.

- ``tools.cli``: the ``course`` command (train, infer, merge, baseline, export)
- ``tools.bench``: the QLoRA benchmark (Unsloth against plain transformers + PEFT + TRL)
- ``tools.run_course``: run every notebook headless and summarise
- ``tools.datagen``: regenerate the course dataset in data/
- ``tools.notebooks``: stamp the shared cells into every notebook, build the whole-course notebook

They use ``helpers`` (the notebooks' support package) for everything a notebook also does, so the
command line and the lessons train, score and save through the same code.
"""
