"""The ``course`` command: train, infer, merge and baseline, on the same helpers as the notebooks.

Each subcommand reads a :class:`tools.config.CourseConfig` (defaults, then ``--config FILE``, then
flags), saves the resolved config as ``course_config.yaml`` beside its outputs, and calls the helpers
that notebooks 04-06 use: ``helpers.train`` to train, ``helpers.scoring`` to answer and score.

Example:
    course train    --config configs/tiny.yaml --max-steps 20
    course baseline --config configs/tiny.yaml --eval-limit 50
    course infer    --config configs/tiny.yaml --instruction "Is the number even or odd?" --input "67693"
    course merge    --config configs/tiny.yaml
    accelerate launch --multi_gpu --num_processes 2 -m tools.cli train --config configs/llama3-8b-t4.yaml

    >>> main(["--help"])   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tools.config import ConfigError, CourseConfig, Placement, load_config, save_config

USAGE = """usage: course {train,infer,merge,baseline,export} [--config FILE.yaml] [--FIELD VALUE ...]

Fine-tune and use an LLM with Unsloth, with the course's recipe (the notebooks' code path).

commands:
  train     train a LoRA adapter (notebook 04) into OUTPUT_DIR/lora_adapter
  infer     answer one prompt (--instruction/--input) or a file (--prompts) with the adapter;
            --eval scores the answers (notebook 06's helpers)
  merge     write a merged 16-bit model and check its greedy output against the adapter (notebook 05)
  baseline  score the base model, without an adapter, on EVAL_DATA (notebook 06)
  export    write the adapter as merged weights, GGUF files and an Ollama Modelfile (notebook 08):
            --formats merged_16bit q8_0 q4_k_m ollama (merged_4bit on a GPU); --push-to-hub REPO
            also uploads them (token: $HF_TOKEN, or the Colab/Kaggle secret HF_TOKEN)

Settings: defaults < the YAML file given by --config < flags. See `course train --help` for every
field, configs/*.yaml for examples and docs/commands.md for the notebook-to-command path.
Multi-GPU (data parallel): accelerate launch --multi_gpu --num_processes 2 -m tools.cli train --config FILE
    --use-gradient-checkpointing True      (standard checkpointing scaled better on two GPUs: docs/benchmarks.md)
"""


class MergeCheckError(RuntimeError):
    """The merged model's greedy output does not match the adapter's."""


class PushError(RuntimeError):
    """An upload to the Hugging Face Hub failed (the message never holds the token)."""


# --- shared steps --------------------------------------------------------------------------------

def prepare_environment(cfg: CourseConfig) -> None:
    """Set what must be set before torch and Unsloth load: hide GPUs for device=cpu, quiet tokenizers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if cfg.device == "cpu" and "torch" not in sys.modules:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # torch and Unsloth then see no NVIDIA GPU
        os.environ["UNSLOTH_FORCE_CPU"] = "1"  # and Unsloth uses its CPU backend even beside an Apple GPU


def import_unsloth() -> None:
    """``import unsloth`` first (it patches transformers, TRL and PEFT), with a clear error where it refuses."""
    try:
        import unsloth  # noqa: F401
    except NotImplementedError as err:  # e.g. Apple MPS, which this Unsloth build does not drive
        raise ConfigError(f"Unsloth refused this device ({err}). On a Mac, run with --device cpu.") from None


def placement_for(cfg: CourseConfig) -> Placement:
    """Device, precision and DDP rank for this process (see tools.config.resolve_placement)."""
    from tools.config import resolve_placement

    placement = resolve_placement(cfg)
    if placement.distributed and placement.device == "cuda":
        import torch

        torch.cuda.set_device(placement.local_rank)
    return placement


def resolve_report_to(cfg: CourseConfig) -> str:
    """'tensorboard' if installed (else 'none', with a notice), 'wandb' if installed (else ConfigError), or 'none'."""
    import importlib.util

    if cfg.report_to == "tensorboard":
        if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
            return "tensorboard"
        print("Notice: TensorBoard is not installed, so training logs only to the console and trainer_state.json "
              "(pip install tensorboard, or set report_to: none to silence this).")
        return "none"
    if cfg.report_to == "wandb" and not importlib.util.find_spec("wandb"):
        raise ConfigError(f"{cfg.source('report_to')}: field 'report_to' is 'wandb' but the wandb package is not "
                          "installed; pip install wandb (and run `wandb login`), or use report_to: tensorboard")
    return cfg.report_to


def notes(cfg: CourseConfig, placement: Placement | None = None, **extra: Any) -> list[str]:
    """Comment lines for the saved config: the command, the resolved model and the hardware."""
    lines = ["command: " + shlex.join(["course", *sys.argv[1:]])] if sys.argv[1:] else []
    if cfg.model in ("auto", "tiny", ""):
        lines.append(f"model resolved to: {cfg.model_path()}")
    if placement is not None:
        lines.append(placement.describe())
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return lines


def load_for_inference(model_name: str, cfg: CourseConfig, placement: Placement, load_in_4bit: bool | None = None):
    """Load a base model or an adapter folder with the training code's loader, switched to inference mode."""
    from unsloth import FastLanguageModel

    from helpers.train import load_model

    four_bit = cfg.load_in_4bit if load_in_4bit is None else load_in_4bit
    model, tokenizer = load_model(model_name, cfg.recipe(), **placement.load_kwargs(four_bit))
    FastLanguageModel.for_inference(model)
    return model, tokenizer


def require_adapter(cfg: CourseConfig) -> Path:
    """The adapter folder, or a ConfigError saying how to get one."""
    path = cfg.adapter_path()
    if not (path / "adapter_config.json").is_file():
        field = "adapter" if cfg.adapter else "output_dir"
        raise ConfigError(f"{cfg.source(field)}: no adapter at {path} (no adapter_config.json); train one with "
                          f"`course train --output-dir {cfg.output_dir}` or pass --adapter FOLDER")
    return path


def check_infer(cfg: CourseConfig) -> Path:
    """infer needs a question (one prompt, a file, or --eval) and an adapter; return the adapter folder."""
    if cfg.instruction is None and cfg.prompts is None and not cfg.eval:
        raise ConfigError("the command line: infer needs --instruction TEXT [--input TEXT], --prompts FILE.jsonl, "
                          "or --eval (scores EVAL_DATA)")
    return require_adapter(cfg)


def single_process(placement: Placement, command: str) -> None:
    """infer, merge and baseline run as one process; under accelerate launch, say so."""
    if placement.distributed:
        raise ConfigError(f"`course {command}` runs as one process; start it without accelerate launch")


def read_prompts(path: str | Path) -> list[dict[str, str]]:
    """Prompts from a .jsonl file: each line an object with 'instruction' and optionally 'input' (other keys kept)."""
    from helpers.data import DataError, json_lines

    records = []
    for where, record in json_lines(path):
        if not isinstance(record, dict) or not isinstance(record.get("instruction"), str) \
                or not record["instruction"].strip():
            raise DataError(f"{where}: expected an object with a non-empty string 'instruction'")
        if not isinstance(record.get("input", ""), str):
            raise DataError(f"{where}: field 'input' must be a string")
        records.append({**record, "input": record.get("input", "")})
    if not records:
        raise DataError(f"{path}: no prompts")
    return records


def eval_records(path: str | Path, limit: int | None) -> list[dict[str, str]]:
    """Held-out records, as notebook 06 loads them (``load_alpaca(path, extra_keys=['family'])``), first ``limit``."""
    from helpers.data import load_alpaca

    dataset = load_alpaca(path, extra_keys=["family"])
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return [dict(row) for row in dataset]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """One JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def answer_and_score(model, tokenizer, records: list[dict[str, str]], cfg: CourseConfig, folder: Path, title: str):
    """Greedy answers and a Report, with the helpers of notebook 06; print the table, save report and answers."""
    from helpers.scoring import answer_token_budget, generate_answers, score

    budget = cfg.max_new_tokens or answer_token_budget(tokenizer, records)
    answers = generate_answers(model, tokenizer, records, batch_size=cfg.generation_batch_size,
                               max_new_tokens=budget, progress=cfg.progress)
    report = score(records, answers)
    write_jsonl(folder / "answers.jsonl", [{**r, "answer": a, "exact_match": i.exact_match}
                                          for r, a, i in zip(records, answers, report.items)])
    (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"\n{title}: {len(records)} records, greedy, up to {budget} new tokens")
    print(report.table().to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"Saved {folder / 'report.json'} and {folder / 'answers.jsonl'}")
    return report


# --- the subcommands -------------------------------------------------------------------------------

def cmd_train(cfg: CourseConfig) -> int:
    """Train a LoRA adapter (notebook 04's steps, through helpers.train.train_run, as python -m helpers.train)."""
    import dataclasses

    from helpers.data import load_alpaca
    from helpers.train import is_main_process, train_run

    placement = placement_for(cfg)
    main = is_main_process()
    model_path = cfg.model_path()
    recipe = dataclasses.replace(cfg.recipe(model_path), report_to=resolve_report_to(cfg))
    out_dir = Path(cfg.output_dir)
    if recipe.report_to == "tensorboard":
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(out_dir / "tensorboard"))
    if main:
        saved = save_config(cfg, out_dir, {"max_steps": recipe.max_steps, "learning_rate": recipe.learning_rate},
                            notes(cfg, placement, world_size=placement.world_size))
        print(f"{placement.describe()}; config saved to {saved}")
    trainer_kwargs = placement.trainer_kwargs()
    if cfg.run_name:
        trainer_kwargs["run_name"] = cfg.run_name
    run = {"device": placement.device, "precision": placement.precision, "gpu": placement.gpu_name,
           "world_size": placement.world_size}
    train_run(model_path, load_alpaca(cfg.data), out_dir, recipe, run, resume=cfg.resume, progress=cfg.progress,
              load_kwargs=placement.load_kwargs(cfg.load_in_4bit), trainer_kwargs=trainer_kwargs)
    if main and recipe.report_to == "tensorboard":
        print(f"TensorBoard logs: tensorboard --logdir {out_dir / 'tensorboard'}")
    return 0


def cmd_infer(cfg: CourseConfig) -> int:
    """Answer with the adapter: one prompt, a file of prompts, or (--eval) a scored set (notebooks 05-06)."""
    from helpers.scoring import generate_answers

    adapter = check_infer(cfg)
    placement = placement_for(cfg)
    single_process(placement, "infer")
    folder = Path(cfg.output_dir) / "infer"
    records = None
    if cfg.eval:
        records = eval_records(cfg.prompts or cfg.eval_data, cfg.eval_limit)
    elif cfg.prompts:
        records = read_prompts(cfg.prompts)[: cfg.eval_limit]
    model, tokenizer = load_for_inference(str(adapter), cfg, placement)
    if cfg.instruction is not None:
        answer = generate_answers(model, tokenizer, [{"instruction": cfg.instruction, "input": cfg.input}],
                                  max_new_tokens=cfg.max_new_tokens or 128, progress=False)[0]
        print(answer)
        return 0
    save_config(cfg, folder, notes=notes(cfg, placement, adapter=adapter))
    if cfg.eval:
        answer_and_score(model, tokenizer, records, cfg, folder, f"Adapter {adapter}")
        return 0
    answers = generate_answers(model, tokenizer, records, batch_size=cfg.generation_batch_size,
                               max_new_tokens=cfg.max_new_tokens or 128, progress=cfg.progress)
    write_jsonl(folder / "answers.jsonl", [{**r, "answer": a} for r, a in zip(records, answers)])
    for record, answer in zip(records, answers):
        print(json.dumps({"instruction": record["instruction"], "input": record["input"], "answer": answer},
                         ensure_ascii=False))
    print(f"Saved {folder / 'answers.jsonl'}")
    return 0


def cmd_baseline(cfg: CourseConfig) -> int:
    """Score the base model, with no adapter, on EVAL_DATA (notebook 06's 'before' column)."""
    placement = placement_for(cfg)
    single_process(placement, "baseline")
    records = eval_records(cfg.eval_data, cfg.eval_limit)
    folder = Path(cfg.output_dir) / "baseline"
    save_config(cfg, folder, notes=notes(cfg, placement))
    model, tokenizer = load_for_inference(cfg.model_path(), cfg, placement)
    report = answer_and_score(model, tokenizer, records, cfg, folder, f"Base model {cfg.model}")
    floor = commonest_answer_floor(cfg, records)
    if floor is not None:
        from helpers.scoring import compare

        floor_path = folder / "commonest_answer.json"
        floor_path.write_text(json.dumps(floor.to_dict(), indent=2) + "\n", encoding="utf-8")
        print("\nExact match beside the floor of giving, for each instruction, its commonest training answer:")
        print(compare({"base": report, "commonest answer": floor}).to_string(float_format=lambda x: f"{x:.3f}"))
    return 0


def commonest_answer_floor(cfg: CourseConfig, records: list[dict[str, str]]):
    """Notebook 06's floor: the Report of giving each instruction's commonest training output (None without data)."""
    from helpers.data import load_alpaca
    from helpers.scoring import commonest_answers, score

    if not Path(cfg.data).is_file():
        return None
    return score(records, commonest_answers([dict(r) for r in load_alpaca(cfg.data)], records))


def cmd_merge(cfg: CourseConfig) -> int:
    """Write a merged 16-bit model (notebook 05's export) and check its greedy output against the adapter."""
    from helpers.data import prompt_for

    placement = placement_for(cfg)
    single_process(placement, "merge")
    adapter = require_adapter(cfg)
    merged = cfg.merged_path()
    prompts = [prompt_for(r["instruction"], r["input"]) for r in eval_records(cfg.eval_data, cfg.merge_check_prompts)]
    # On a GPU, Unsloth merges from a 4-bit load (it reads the base's 16-bit weights shard by shard); on a CPU
    # it merges only from a 16-bit load.
    four_bit = cfg.load_in_4bit and placement.device == "cuda"
    model, tokenizer = load_for_inference(str(adapter), cfg, placement, load_in_4bit=four_bit)
    print(f"Merging {adapter} into its base model and saving 16-bit weights to {merged} ...")
    model.save_pretrained_merged(str(merged), tokenizer, save_method="merged_16bit")
    save_config(cfg, merged, notes=notes(cfg, placement, adapter=adapter))
    if cfg.merge_check == "off":
        print(f"Merged model saved to {merged} (merge_check: off, output not compared).")
        return 0
    new_tokens = cfg.max_new_tokens or 32
    if is_quantized(model):
        # The merge folds the adapter into the base model's 16-bit weights, not into the 4-bit ones it trained
        # on; compare like with like: the adapter on the 16-bit base (the 4-bit model differs from both).
        print("Reloading the adapter on the 16-bit base weights, which the merge starts from, for the check ...")
        del model
        free_memory()
        model, tokenizer = load_for_inference(str(adapter), cfg, placement, load_in_4bit=False)
    expected = [greedy(model, tokenizer, p, new_tokens) for p in prompts]
    del model  # the adapter model and the merged model need not share the GPU
    free_memory()
    merged_model, merged_tokenizer = load_for_inference(str(merged), cfg, placement, load_in_4bit=False)
    results = [compare_greedy(merged_model, merged_tokenizer, p, e, new_tokens, cfg.merge_tolerance)
               for p, e in zip(prompts, expected)]
    (merged / "merge_check.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for i, r in enumerate(results):
        detail = "" if r["verdict"] == "identical" else (
            f" (first differs at new token {r['first_difference']}, largest gap {r['worst_gap_std']:.3f} std)")
        print(f"prompt {i}: {r['verdict']}{detail}")
    bad = [r for r in results if r["verdict"] == "mismatch"]
    if bad:
        message = (f"the merged model at {merged} does not reproduce the adapter's greedy output on {len(bad)} of "
                   f"{len(results)} prompts (details in {merged / 'merge_check.json'})")
        if cfg.merge_check == "strict":
            raise MergeCheckError(message)
        print(f"Warning: {message}")
    else:
        print(f"Merged model saved to {merged}; its greedy output matches the adapter's on {len(results)} prompts.")
    return 0


MERGED = {"merged_16bit": "merged_16bit", "merged_4bit": "merged_4bit_forced"}  # format -> Unsloth's save_method
ALIASES = {"fast_quantized": "q8_0", "quantized": "q4_k_m"}  # Unsloth's GGUF aliases -> the file's method


def check_export(cfg: CourseConfig) -> Path:
    """export needs an adapter and formats it knows (GGUF methods are checked against Unsloth's list); return the adapter."""
    adapter = require_adapter(cfg)
    gguf = [f for f in cfg.formats if f not in MERGED and f != "ollama"]
    if "ollama" in cfg.formats and not gguf:
        raise ConfigError(f"{cfg.source('formats')}: field 'formats' has 'ollama' but no GGUF method for its FROM "
                          f"line; add one, e.g. --formats q8_0 ollama")
    if cfg.push_to_hub is not None:
        from helpers.secrets import MissingTokenError, hf_token

        try:
            hf_token(required=True)
        except MissingTokenError as err:
            raise ConfigError(f"{cfg.source('push_to_hub')}: field 'push_to_hub' is set, but: {err}") from None
    return adapter


def cmd_export(cfg: CourseConfig) -> int:
    """Export the adapter (notebook 08): merged 16-bit or 4-bit weights, GGUF files, an Ollama Modelfile."""
    from helpers.data import ALPACA_PROMPT
    from helpers.llama_cpp import LlamaCppError, alpaca_modelfile, check_quantization, export_errors, gguf_files, llama_cpp_dir
    from helpers.save import atomic_folder
    from helpers.tiny import carry_sentencepiece_model

    adapter = check_export(cfg)
    placement = placement_for(cfg)
    single_process(placement, "export")
    gguf = [f for f in cfg.formats if f not in MERGED and f != "ollama"]
    # llama.cpp first: check_quantization imports unsloth.save, which makes Unsloth read UNSLOTH_LLAMA_CPP_PATH
    # once and for all. A missing llama.cpp is reported after a typo in the methods, the quicker fix.
    llama_cpp, missing = None, None
    if gguf:
        try:
            llama_cpp = llama_cpp_dir() or "Unsloth fetches and builds its own"
        except LlamaCppError as err:
            missing = err
    try:
        check_quantization(gguf)
    except LlamaCppError as err:
        raise ConfigError(f"{cfg.source('formats')}: field 'formats': {err} (besides the GGUF methods: "
                          f"{', '.join(MERGED)}, ollama)") from None
    if missing is not None:
        raise missing
    if "merged_4bit" in cfg.formats and placement.device != "cuda":
        raise ConfigError(f"{cfg.source('formats')}: field 'formats' has 'merged_4bit', which Unsloth writes from a "
                          f"GPU only (bitsandbytes); use merged_16bit or a GGUF method on this {placement.device}")
    out = Path(cfg.output_dir) / "export"
    model, tokenizer = load_for_inference(str(adapter), cfg, placement)
    base = json.loads((Path(adapter) / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    carry_sentencepiece_model(tokenizer, base)  # the tiny model's tokenizer.model (a no-op for a hub model)
    written = []

    def save_merged(fmt: str) -> None:
        with export_errors(out / fmt), atomic_folder(out / fmt) as staging:
            model.save_pretrained_merged(str(staging), tokenizer, save_method=MERGED[fmt])
        written.append(out / fmt)
    if "merged_16bit" in cfg.formats:
        save_merged("merged_16bit")
    if gguf:
        print(f"llama.cpp: {llama_cpp}")
        with export_errors(out / "gguf"), atomic_folder(out / "gguf") as staging:
            model.save_pretrained_gguf(str(staging / "model"), tokenizer, quantization_method=gguf)
            shutil.rmtree(staging / "model" / "merged_16bit", ignore_errors=True)  # Unsloth's CPU staging, in fp32
            files = gguf_files(staging)
            absent = [m for m in gguf if m != "not_quantized" and ALIASES.get(m, m) not in files]
            if absent or not files:
                raise LlamaCppError(f"{out / 'gguf'}: the export wrote no GGUF file for {absent or gguf}; nothing was "
                                    f"kept")
            if "ollama" in cfg.formats:  # beside the first method's file, inside the staging folder: all or nothing
                first = files.get(ALIASES.get(gguf[0], gguf[0]), next(iter(files.values())))
                (first.parent / "Modelfile").write_text(alpaca_modelfile(
                    first.name, ALPACA_PROMPT, stops=[tokenizer.eos_token, "### Instruction:"]))
        files = gguf_files(out / "gguf")
        written += list(files.values()) + [p for p in (out / "gguf").rglob("Modelfile")]
    save_config(cfg, out, notes=notes(cfg, placement, adapter=adapter))
    if cfg.push_to_hub is not None:
        push(model, tokenizer, cfg.push_to_hub, out / "gguf" if gguf else None)
    if "merged_4bit" in cfg.formats:  # last: Unsloth folds the adapter into the loaded model in place (PEFT's
        save_merged("merged_4bit")  # merge_and_unload), so an export after it would save the base model alone
    for path in written:
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        print(f"{size / 1e6:10.1f} MB  {path}")
    return 0


def push(model, tokenizer, repo: str, gguf_dir: Path | None) -> None:
    """Upload the merged 16-bit model (``push_to_hub_merged``, as notebook 08) and the GGUF folder's files."""
    from huggingface_hub import HfApi

    from helpers.secrets import hf_token

    token = hf_token(required=True)
    print(f"Uploading to https://huggingface.co/{repo} with the token from {token.source} ...")
    try:
        api = HfApi(token=token.value)
        api.create_repo(repo, private=True, exist_ok=True)  # a new repository is public otherwise
        model.push_to_hub_merged(repo, tokenizer, save_method="merged_16bit", token=token.value)
        if gguf_dir is not None:
            api.upload_folder(repo_id=repo, folder_path=str(gguf_dir), path_in_repo="gguf",
                              allow_patterns=["*.gguf", "*Modelfile"])
    except Exception as err:  # HTTP errors, offline mode, a bad repository name: one line, the token masked
        last = (str(err).strip().splitlines() or [""])[-1].replace(token.value, token.masked())
        offline = " HF_HUB_OFFLINE=1 is set: unset it to upload." if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise PushError(f"uploading to {repo} failed ({type(err).__name__}: {last}); check that the repository name "
                        f"is 'your-name/name' and that the token may write.{offline}") from None
    print(f"Uploaded to https://huggingface.co/{repo} (private: make it public in its settings on the Hub)")


def end_process_group() -> None:
    """Under ``accelerate launch``: leave the process group cleanly (torch warns at exit when nobody did)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_quantized(model) -> bool:
    """True when the model holds bitsandbytes 4-bit layers."""
    return any(type(m).__name__ == "Linear4bit" for m in model.modules())


def free_memory() -> None:
    """Collect dropped models and give their GPU memory back."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def greedy(model, tokenizer, prompt: str, new_tokens: int) -> list[int]:
    """The prompt's token ids followed by ``new_tokens`` greedily generated ones (stopping at EOS)."""
    import torch

    from helpers.scoring import max_new_tokens_only

    inputs = tokenizer([prompt], return_tensors="pt").to(model.device)
    with torch.no_grad(), max_new_tokens_only(model):
        out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return out[0].tolist()


def compare_greedy(model, tokenizer, prompt: str, expected: list[int], new_tokens: int,
                   tolerance: float) -> dict[str, Any]:
    """Compare the model's greedy continuation with ``expected`` (the adapter's): identical, near-tie or mismatch.

    Where they differ, the model reads ``expected`` (teacher forcing) and each of the adapter's tokens must be
    within ``tolerance`` standard deviations of the model's top logit there: a tie broken the other way by
    16-bit rounding, not a different model.
    """
    import torch

    got = greedy(model, tokenizer, prompt, new_tokens)
    n_prompt = len(tokenizer([prompt])["input_ids"][0])
    result: dict[str, Any] = {"prompt": prompt, "adapter_tokens": expected[n_prompt:], "merged_tokens": got[n_prompt:],
                              "verdict": "identical", "first_difference": None, "worst_gap_std": 0.0}
    if got == expected:
        return result
    diffs = [i for i, (a, b) in enumerate(zip(expected[n_prompt:], got[n_prompt:])) if a != b]
    result["first_difference"] = diffs[0] if diffs else min(len(expected), len(got)) - n_prompt
    ids = torch.tensor([expected], device=model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, n_prompt - 1:-1].float()
    chosen = logits.gather(1, ids[0, n_prompt:, None])[:, 0]
    gaps = (logits.max(-1).values - chosen) / logits.std(-1).clamp_min(1e-6)
    result["worst_gap_std"] = float(gaps.max()) if len(gaps) else 0.0
    result["verdict"] = "near-tie" if result["worst_gap_std"] <= tolerance else "mismatch"
    return result


COMMANDS: dict[str, Callable[[CourseConfig], int]] = {
    "train": cmd_train, "infer": cmd_infer, "merge": cmd_merge, "baseline": cmd_baseline, "export": cmd_export,
}
PREFLIGHT: dict[str, Callable[[CourseConfig], Any]] = {  # cheap checks, before torch and Unsloth load
    "infer": check_infer, "merge": require_adapter, "export": check_export,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``course``: parse the subcommand and its config, run it; errors print one clear line."""
    from helpers.data import DataError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"course: unknown command {command!r}; choose one of {', '.join(COMMANDS)}\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        cfg = load_config(rest, prog=f"course {command}", description=COMMANDS[command].__doc__)
        PREFLIGHT.get(command, lambda _: None)(cfg)
        prepare_environment(cfg)
        import_unsloth()
        try:
            return COMMANDS[command](cfg)
        finally:
            end_process_group()
    except (ConfigError, DataError) as err:
        print(f"course {command}: error: {err}", file=sys.stderr)
        return 2
    except MergeCheckError as err:
        print(f"course {command}: merge check failed: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # an export that failed (no llama.cpp, a failed conversion, a full disk, an upload)
        if type(err).__name__ not in ("LlamaCppError", "PushError"):
            raise
        cause = "\n".join(str(err.__cause__).strip().splitlines()[-20:]) if err.__cause__ else ""
        print((f"{cause}\n" if cause else "") + f"course {command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
