"""The ``course`` command: train, infer, merge, baseline and export, on the notebooks' helpers.

Each subcommand parses its own small dataclasses with TRL's ``TrlParser``; ``train`` parses TRL's
``SFTConfig`` too, as ``trl/scripts/sft.py`` does. Defaults (the recipe's numbers) < ``--config
FILE.yaml`` < flags. Settings are checked before torch or Unsloth loads, and saved as
``course_config.yaml`` beside the outputs, a ``--config`` file again.

    course train --config configs/tiny.yaml --max-steps 20
    course infer --config configs/tiny.yaml --instruction "Is the number even or odd?" --input 6
    accelerate launch --multi_gpu --num_processes 2 -m tools.cli train --config FILE.yaml

    >>> parse("infer", ["--model", "tiny", "--eval-limit", "8"]).args.eval_limit
    8
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from helpers.recipe import Recipe

R = Recipe()  # the recipe's numbers, the defaults of the fields a notebook also sets
RECIPE_FIELDS = [f.name for f in fields(Recipe)]
USAGE = """usage: course {train,infer,merge,baseline,export} [--config FILE.yaml] [--FIELD VALUE]

Fine-tune and use an LLM with Unsloth, with the course's recipe (the notebooks' code path).

commands:
  train     train a LoRA adapter (notebook 04) into OUTPUT_DIR/lora_adapter
  infer     answer one prompt (--instruction/--input) or a file (--prompts) with the adapter;
            --eval scores the answers (notebook 06's helpers)
  merge     write a merged 16-bit model and check its greedy output against the adapter's
  baseline  score the base model, without an adapter, on EVAL_DATA (notebook 06)
  export    write merged weights, GGUF files and an Ollama Modelfile (notebook 08):
            --formats merged_16bit q8_0 q4_k_m ollama (merged_4bit on a GPU); --push-to-hub REPO
            also uploads them (token: $HF_TOKEN, or the Colab/Kaggle secret HF_TOKEN)

Settings: defaults < the YAML file given by --config < flags. `course COMMAND --help` lists the
command's fields (train: its own, LoRA's and TRL's SFTConfig's); configs/*.yaml has examples.
Multi-GPU: accelerate launch --multi_gpu --num_processes 2 -m tools.cli train --config FILE
"""


class ConfigError(ValueError):
    """A setting or a config file that cannot be used, naming the field and where it came from."""


class MergeCheckError(RuntimeError):
    """The merged model's greedy output does not match the adapter's."""


class PushError(RuntimeError):
    """An upload to the Hugging Face Hub failed (the message never holds the token)."""


# --- settings: a dataclass per command, LoRA's, and for train TRL's SFTConfig ---------------------


def option(default: Any, help: str) -> Any:
    """A dataclass field with its ``--help`` text."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ModelArgs:
    model: str = option("auto", "auto, smollm2, tiny, a hub name or a local folder")
    max_seq_length: int = option(R.max_seq_length, "Longest sequence (and SFTConfig's max_length)")
    device: Literal["auto", "cuda", "mps", "cpu"] = option("auto", "auto: CUDA, MPS, else CPU")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = option("auto", "auto: bf16, else fp16")
    load_in_4bit: bool = option(True, "Load the base model in 4-bit on a GPU (QLoRA)")
    progress: bool = option(True, "Show progress bars")


@dataclass
class TrainArgs(ModelArgs):
    data: str = option("data/train.jsonl", "Training data: Alpaca records (.jsonl, .json, .csv)")
    resume: bool = option(True, "Resume from the last checkpoint in OUTPUT_DIR/checkpoints")


@dataclass
class LoraArgs:
    r: int = option(R.r, "LoRA rank")
    lora_alpha: int = option(R.lora_alpha, "LoRA scale numerator (the update is scaled by alpha/r)")
    lora_dropout: float = option(R.lora_dropout, "Dropout on the LoRA path, in [0, 1)")
    target_modules: list[str] = option(R.target_modules, "Projections that get adapters")
    use_dora: bool = option(R.use_dora, "Weight-decomposed LoRA (DoRA)")
    use_gradient_checkpointing: Literal["unsloth", True, False] = option(
        R.use_gradient_checkpointing, "unsloth (offloads to RAM), True (faster on 2 GPUs), False"
    )


@dataclass
class RunArgs(ModelArgs):
    output_dir: str = option("outputs/run", "The training run's folder")
    adapter: str | None = option(None, "Adapter folder; none: OUTPUT_DIR/lora_adapter")

    def adapter_path(self) -> Path:
        return Path(self.adapter) if self.adapter else Path(self.output_dir) / "lora_adapter"


@dataclass
class InferArgs(RunArgs):
    instruction: str | None = option(None, "The instruction of one prompt")
    input: str = option("", "The input of that prompt")
    prompts: str | None = option(None, "A .jsonl file of prompts (with --eval: Alpaca records)")
    eval: bool = option(False, "Score the answers (of --prompts, else of EVAL_DATA)")
    eval_data: str = option("data/eval.jsonl", "Held-out records with a 'family' field")
    eval_limit: int | None = option(None, "Score only the first N records")
    max_new_tokens: int | None = option(None, "none: the longest answer + 8 when scoring, else 128")
    generation_batch_size: int = option(32, "Prompts per generation batch")


@dataclass
class BaselineArgs(ModelArgs):
    output_dir: str = option("outputs/run", "The scores go to OUTPUT_DIR/baseline")
    data: str = option("data/train.jsonl", "Training data, for the commonest-answer floor")
    eval_data: str = option("data/eval.jsonl", "Held-out records with a 'family' field")
    eval_limit: int | None = option(None, "Score only the first N records")
    max_new_tokens: int | None = option(None, "none: the longest expected answer + 8")
    generation_batch_size: int = option(32, "Prompts per generation batch")


@dataclass
class MergeArgs(RunArgs):
    merged_dir: str | None = option(
        None, "The merged model's folder; none: OUTPUT_DIR/merged_16bit"
    )
    merge_check: Literal["strict", "warn", "off"] = option("strict", "strict fails on a mismatch")
    merge_check_prompts: int = option(3, "How many EVAL_DATA prompts the check uses")
    merge_tolerance: float = option(0.1, "A near-tie: within this many logit std-devs of the top")
    eval_data: str = option("data/eval.jsonl", "Held-out records, the check's prompts")
    max_new_tokens: int | None = option(None, "New tokens the check compares; none: 32")

    def merged_path(self) -> Path:
        return Path(self.merged_dir) if self.merged_dir else Path(self.output_dir) / "merged_16bit"


@dataclass
class ExportArgs(RunArgs):
    formats: list[str] = option(
        ["merged_16bit", "q8_0", "ollama"], "merged_16bit, merged_4bit, q8_0, q4_k_m, ..., ollama"
    )
    push_to_hub: str | None = option(None, "Also upload to this repository (token: $HF_TOKEN)")


ARGS = {
    "train": (TrainArgs, LoraArgs),
    "infer": (InferArgs,),
    "merge": (MergeArgs,),
    "baseline": (BaselineArgs,),
    "export": (ExportArgs,),
}
SFT_COURSE = {"output_dir": "outputs/run", "report_to": "tensorboard"}  # train's, beside the recipe
# The fields the course defines: a config file may hold those of another command, which are skipped.
COURSE_FIELDS = {f.name for types in ARGS.values() for t in types for f in fields(t)}
COURSE_FIELDS |= {*RECIPE_FIELDS, *SFT_COURSE, "run_name"}
NULL_IS_RECIPE = ("max_steps", "learning_rate")  # null in a file: the recipe for the model
AT_LEAST_1 = (
    "r lora_alpha max_seq_length max_steps per_device_train_batch_size save_steps eval_limit "
    "gradient_accumulation_steps max_new_tokens generation_batch_size merge_check_prompts"
).split()
NON_EMPTY = ["model", "data", "eval_data", "output_dir", "optim", "lr_scheduler_type"]
RULES = [  # (fields, test, what a value must be); a null is the default
    (AT_LEAST_1, lambda v: v >= 1, "at least 1"),
    (NON_EMPTY, lambda v: bool(str(v).strip()), "a non-empty string"),
    (["lora_dropout"], lambda v: 0 <= v < 1, "in [0, 1)"),
    (["learning_rate"], lambda v: 0 < v < 1, "between 0 and 1 (e.g. 2e-4)"),
    (["warmup_steps", "weight_decay", "merge_tolerance"], lambda v: v >= 0, "0 or more"),
    (["target_modules", "formats"], lambda v: all(str(m).strip() for m in v), "non-empty names"),
    (["report_to"], lambda v: v in ("tensorboard", "wandb", "none"), "tensorboard, wandb or none"),
]


@dataclass
class Settings:
    """A command's settings, and where each value came from."""

    command: str
    args: Any  # the command's dataclass: TrainArgs, InferArgs, ...
    lora: LoraArgs | None = None
    sft: dict[str, Any] = field(default_factory=dict)  # train: SFTConfig's keyword arguments
    sources: dict[str, str] = field(default_factory=dict)  # field: the file or the command line
    file: str | None = None

    def source(self, name: str) -> str:
        return self.sources.get(name, "the defaults")

    def values(self) -> dict[str, Any]:
        """Every value by field name, as ``course_config.yaml`` holds them."""
        return {**asdict(self.args), **(asdict(self.lora) if self.lora else {}), **self.sft}

    def model_path(self) -> str:
        """The model to load (:func:`helpers.models.choose_model`: 'tiny' is a local folder)."""
        from helpers.models import choose_model

        return choose_model(self.args.model)

    def recipe(self, model_path: str | None = None) -> Recipe:
        """The model's recipe, with each value set in the file or by a flag (logging aside)."""
        values = self.values()
        chosen = {n: values[n] for n in RECIPE_FIELDS if n in self.sources and n != "report_to"}
        return dataclasses.replace(Recipe.for_model(model_path or self.model_path()), **chosen)


def parse(command: str, argv: Sequence[str], sft: bool = True) -> Settings:
    """``command``'s checked settings from ``argv``: defaults < ``--config FILE.yaml`` < flags.

    train's SFTConfig loads transformers and torch; ``sft=False`` parses train's other fields only
    (SFTConfig's flags and fields wait for the full parse)."""
    from trl import TrlParser

    path, flags = split_config_flag(argv)
    partial = command == "train" and not sft
    types, defaults = ARGS[command], {}
    if command == "train" and sft:
        from trl import SFTConfig

        names = {f.name for f in fields(SFTConfig)}
        types = (*types, SFTConfig)
        defaults = {**{n: getattr(R, n) for n in RECIPE_FIELDS if n in names}, **SFT_COURSE}
    doc, options = COMMANDS[command].__doc__, {"allow_abbrev": False, "exit_on_error": False}
    parser = TrlParser(
        types, prog=f"course {command}", description=doc, add_help=not partial, **options
    )
    parser.add_argument("--config", metavar="FILE.yaml", help="Settings file; flags override it")
    parser.set_defaults(**defaults)
    from_file = file_args(read_yaml(path), parser, command, path, partial) if path else []
    run_parser(parser, from_file, path, partial)  # the file's values alone: errors name the file
    values = vars(run_parser(parser, from_file + flags, "the command line", partial))
    dests = {o: a.dest for a in parser._actions for o in a.option_strings}
    sources = {}
    for args, where in ((from_file, path), (flags, "the command line")):
        sources |= {dests[a.split("=")[0]]: where for a in args if a.split("=")[0] in dests}
    del values["config"]
    parts = [t(**{f.name: values.pop(f.name) for f in fields(t)}) for t in ARGS[command]]
    sft_kwargs = {k: v for k, v in values.items() if k in defaults or k in sources}
    lora = parts[1] if command == "train" else None
    return check(Settings(command, parts[0], lora, sft_kwargs, sources, path))


def split_config_flag(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """Take ``--config PATH`` (or ``--config=PATH``) out of ``argv``: (path or None, the rest)."""
    path, rest, it = None, [], iter(argv)
    for arg in it:
        if arg == "--config":
            path = next(it, None)
            if path is None:
                raise ConfigError("the command line: --config needs a file path")
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return path, rest


def yaml_loader():
    """PyYAML's SafeLoader with YAML 1.2 scalars: 2e-4 is a float, only true/false are booleans."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    booleans, floats = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:float"
    Loader.yaml_implicit_resolvers = {
        key: [(tag, rx) for tag, rx in resolvers if tag != booleans]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    true_false = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
    Loader.add_implicit_resolver(booleans, true_false, list("tTfF"))
    exponent = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver(floats, exponent, list("-+0123456789"))
    return Loader


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A config file's mapping of field: value (ConfigError names the file)."""
    import yaml

    if not Path(path).is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=yaml_loader())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})".replace("\n", " ")) from None
    if not isinstance(data, dict | None):
        raise ConfigError(f"{path}: expected a mapping of field: value, got {type(data).__name__}")
    return data or {}


def file_args(values: dict, parser, command: str, path: str, partial: bool) -> list[str]:
    """The file's values as flags for ``parser``; the fields of other commands are left out."""
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    own = {f.name for t in ARGS[command] for f in fields(t)} | {"output_dir"}
    # another command's field is that command's, though SFTConfig has push_to_hub too (a bool)
    others = {f.name for c, ts in ARGS.items() if c != command for t in ts for f in fields(t)}
    args = []
    for key, value in values.items():
        action = None if key in others - own else actions.get(key)
        if action is None:
            check_known(key, command, actions, path, partial)
        elif value is None and (action.default is None or key in NULL_IS_RECIPE):
            continue  # the default
        elif value is None:
            raise ConfigError(f"{path}: field '{key}' cannot be null")
        elif isinstance(value, list) != (action.nargs == "+"):
            what = "a list (e.g. [a, b])" if action.nargs == "+" else "a single value"
            raise ConfigError(f"{path}: field '{key}' must be {what}, got {value!r}")
        elif isinstance(value, list):
            args += [f"--{key}", *map(str, value)]
        else:
            args.append(f"--{key}={json.dumps(value) if isinstance(value, dict) else value}")
    return args


def check_known(key: str, command: str, actions: dict, path: str, partial: bool) -> None:
    """A field of no command is a mistake (SFTConfig's are train's)."""
    if partial or key in COURSE_FIELDS or (command != "train" and key in sft_fields()):
        return
    close = difflib.get_close_matches(str(key), [*actions, *COURSE_FIELDS], n=1, cutoff=0.75)
    hint = f"did you mean '{close[0]}'?" if close else f"`course {command} --help` lists them"
    raise ConfigError(f"{path}: unknown field '{key}'; {hint}")


def sft_fields() -> set[str]:
    """The names of SFTConfig's fields (this loads transformers and torch)."""
    from trl import SFTConfig

    return {f.name for f in fields(SFTConfig)}


def run_parser(parser, args: list[str], where: str | None, partial: bool) -> argparse.Namespace:
    """``parser.parse_known_args(args)``, an error a ConfigError naming ``where``."""
    try:
        namespace, extra = parser.parse_known_args(args)
    except argparse.ArgumentError as err:
        name = (err.argument_name or "").split("/")[0].lstrip("-")
        raise ConfigError(f"{where}: field '{name}': {err.message}") from None
    if extra and not partial:
        options = [o for a in parser._actions for o in a.option_strings]
        close = difflib.get_close_matches(extra[0], options, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"{where}: unrecognized argument {extra[0]!r}{hint}")
    return namespace


def check(s: Settings) -> Settings:
    """Check the values' ranges; ConfigError names the first bad field and its source."""
    values = s.values()
    for names, ok, what in RULES:
        for name in names:
            value = values.get(name)
            if value is not None and not ok(value):
                raise ConfigError(f"{s.source(name)}: field '{name}' must be {what}, got {value!r}")
    if "hub_token" in s.sources:  # SFTConfig's: a token in a file or a command line gets copied
        raise ConfigError(
            f"{s.source('hub_token')}: field 'hub_token' is not taken; the token comes from "
            "$HF_TOKEN or the Colab/Kaggle secret HF_TOKEN, never from a flag or a file"
        )
    if values.get("instruction") is not None and values.get("prompts") is not None:
        where = s.source("prompts")
        raise ConfigError(f"{where}: field 'prompts' cannot be used together with 'instruction'")
    return s


def save_config(s: Settings, folder: Path, resolved: dict | None = None, notes=()) -> Path:
    """Write the settings (``resolved`` overriding) to ``folder/course_config.yaml``."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    header = [
        "The configuration this run used; rerun it with: course <command> --config <this file>",
        f"read from: {s.file or 'no file (defaults and flags)'}",
        *notes,
    ]
    values = {**s.values(), **(resolved or {})}
    body = yaml.safe_dump(values, sort_keys=False, default_flow_style=None, width=100)
    path = folder / "course_config.yaml"
    path.write_text("".join(f"# {line}\n" for line in header) + body, encoding="utf-8")
    return path


# --- hardware: device, precision and the process's place in a multi-GPU run -----------------------


@dataclass(frozen=True)
class Placement:
    """Where this process runs and in what precision; under ``accelerate launch``, its rank too."""

    device: str  # cuda, mps or cpu
    precision: str  # bf16, fp16, fp32, or auto on a CPU (Unsloth's choice)
    local_rank: int = 0
    world_size: int = 1
    gpu_name: str | None = None
    forced_cpu: bool = False  # device: cpu was asked for (not just the fallback)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def load_kwargs(self, load_in_4bit: bool = True) -> dict[str, Any]:
        """``from_pretrained``'s arguments: dtype, 4-bit, and one GPU per DDP process."""
        import torch

        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
        kwargs = {"dtype": dtypes.get(self.precision), "load_in_4bit": load_in_4bit}
        if self.distributed and self.device == "cuda":
            kwargs["device_map"] = {"": self.local_rank}  # a whole copy on each process's GPU
        return kwargs

    def trainer_kwargs(self) -> dict[str, Any]:
        """``SFTConfig``'s arguments: mixed precision, and DDP's under accelerate."""
        kwargs = {}
        if self.device in ("cuda", "mps"):  # on a CPU, Unsloth sets precision up itself
            kwargs = {"fp16": self.precision == "fp16", "bf16": self.precision == "bf16"}
        if self.forced_cpu:
            kwargs["use_cpu"] = True  # the trainer stays off an Apple GPU too
        if self.distributed:
            kwargs["ddp_find_unused_parameters"] = False  # the frozen weights get no gradients
        return kwargs

    def describe(self) -> str:
        where = self.device + (f" ({self.gpu_name})" if self.gpu_name else "")
        rank = f", process {self.local_rank} of {self.world_size}" if self.distributed else ""
        what = "Unsloth's CPU dtype" if self.precision == "auto" else self.precision
        return f"device: {where}, precision: {what}{rank}"


def resolve_placement(s: Settings, hardware=None, env=None) -> Placement:
    """Device and precision from the settings and the hardware; ConfigError where impossible."""
    from helpers.runtime import runtime_info

    hw, env = hardware or runtime_info(), os.environ if env is None else env
    device, precision = s.args.device, s.args.precision
    where, why = s.source("device"), s.source("precision")
    missing = {"cuda": "torch sees no CUDA GPU", "mps": "Apple MPS is not available"}
    if device in missing and hw.device != device:
        raise ConfigError(
            f"{where}: field 'device' is '{device}' but {missing[device]}; use auto or cpu"
        )
    if device == "cpu" and hw.device == "cuda":
        raise ConfigError(
            f"{where}: field 'device' is 'cpu' but this process sees a CUDA GPU; the "
            "command hides it only before torch loads (or set CUDA_VISIBLE_DEVICES='')"
        )
    device = hw.device if device == "auto" else device
    if device == "cuda" and precision == "bf16" and not hw.bf16:
        raise ConfigError(
            f"{why}: field 'precision' is 'bf16' but this GPU ({hw.gpu_name}) has no "
            "native bfloat16 (compute capability 8.0+: A100, L4, RTX 30xx); use fp16 or auto"
        )
    if device == "cpu" and precision == "fp16":
        raise ConfigError(
            f"{why}: field 'precision' is 'fp16' but the device is the CPU, which has no "
            "fast float16; use auto (Unsloth picks bf16 or fp32) or fp32"
        )
    if precision == "auto" and device != "cpu":  # MPS: fp16 autocast is not reliable for training
        precision = {"cuda": "bf16" if hw.bf16 else "fp16", "mps": "fp32"}[device]
    rank, size = int(env.get("LOCAL_RANK") or 0), int(env.get("WORLD_SIZE") or 1)
    gpu = hw.gpu_name if device == "cuda" else None
    return Placement(device, precision, rank, size, gpu, forced_cpu=s.args.device == "cpu")


# --- shared steps ---------------------------------------------------------------------------------


def prepare_environment(s: Settings) -> None:
    """What must be set before torch loads: device=cpu hides the GPUs; quiet tokenizers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if s.args.device == "cpu" and "torch" not in sys.modules:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # torch and Unsloth see no NVIDIA GPU
        os.environ["UNSLOTH_FORCE_CPU"] = "1"  # Unsloth's CPU backend, even beside an Apple GPU


def import_unsloth() -> None:
    """``import unsloth`` (it patches transformers, TRL and PEFT); a clear error if it refuses."""
    import warnings

    with warnings.catch_warnings():
        # TRL's parser came first: TRL's argument classes (train: SFTConfig, so transformers and
        # PEFT too); the trainer and the model classes Unsloth patches load after it.
        warnings.filterwarnings("ignore", message="WARNING: Unsloth should be imported before")
        try:
            import unsloth  # noqa: F401
        except NotImplementedError as err:  # e.g. Apple MPS, which this Unsloth does not drive
            raise ConfigError(
                f"Unsloth refused this device ({err}); on a Mac, use --device cpu"
            ) from None


def placement_for(s: Settings) -> Placement:
    """This process's placement; under DDP, torch's current GPU is its own."""
    placement = resolve_placement(s)
    if placement.distributed and placement.device == "cuda":
        import torch

        torch.cuda.set_device(placement.local_rank)
    return placement


def resolve_report_to(s: Settings) -> str:
    """tensorboard if installed (else none, with a notice), wandb if installed, or none."""
    import importlib.util

    report_to = s.sft["report_to"]
    if report_to == "tensorboard" and not importlib.util.find_spec("tensorboard"):
        print(
            "Notice: TensorBoard is not installed, so training logs only to the console and "
            "trainer_state.json (pip install tensorboard, or report_to: none silences this)."
        )
        return "none"
    if report_to == "wandb" and not importlib.util.find_spec("wandb"):
        raise ConfigError(
            f"{s.source('report_to')}: field 'report_to' is 'wandb' but wandb is not "
            "installed; pip install wandb (then `wandb login`), or use tensorboard"
        )
    return report_to


def notes(s: Settings, placement: Placement, **extra: Any) -> list[str]:
    """Comment lines for the saved settings: the command, the resolved model, the hardware."""
    lines = ["command: " + shlex.join(["course", *sys.argv[1:]])] if sys.argv[1:] else []
    if s.args.model in ("auto", "tiny", ""):
        lines.append(f"model resolved to: {s.model_path()}")
    return [*lines, placement.describe(), *(f"{k}: {v}" for k, v in extra.items())]


def load_for_inference(model_name: str, s: Settings, placement: Placement, load_in_4bit=None):
    """A base model or an adapter folder, loaded as training loads it, in inference mode."""
    from unsloth import FastLanguageModel

    from helpers.train import load_model

    four_bit = s.args.load_in_4bit if load_in_4bit is None else load_in_4bit
    model, tokenizer = load_model(model_name, s.recipe(), **placement.load_kwargs(four_bit))
    FastLanguageModel.for_inference(model)
    return model, tokenizer


def require_adapter(s: Settings) -> Path:
    """The adapter folder, or a ConfigError that says how to get one."""
    path = s.args.adapter_path()
    if not (path / "adapter_config.json").is_file():
        where = s.source("adapter" if s.args.adapter else "output_dir")
        raise ConfigError(
            f"{where}: no adapter at {path} (no adapter_config.json); train one with "
            f"`course train --output-dir {s.args.output_dir}` or pass --adapter FOLDER"
        )
    return path


def check_infer(s: Settings) -> Path:
    """infer needs a question (one prompt, a file or --eval) and an adapter."""
    if s.args.instruction is None and s.args.prompts is None and not s.args.eval:
        raise ConfigError(
            "the command line: infer needs --instruction TEXT [--input TEXT], "
            "--prompts FILE.jsonl, or --eval (scores EVAL_DATA)"
        )
    return require_adapter(s)


def single_process(placement: Placement, command: str) -> None:
    if placement.distributed:
        raise ConfigError(f"`course {command}` runs as one process, without accelerate launch")


def read_prompts(path: str | Path) -> list[dict[str, str]]:
    """Prompts from a .jsonl file: objects with 'instruction', optionally 'input' (others kept)."""
    from helpers.data import DataError, json_lines

    records = []
    for where, record in json_lines(path):
        instruction = record.get("instruction") if isinstance(record, dict) else None
        if not isinstance(instruction, str) or not instruction.strip():
            raise DataError(f"{where}: expected an object with a non-empty string 'instruction'")
        if not isinstance(record.get("input", ""), str):
            raise DataError(f"{where}: field 'input' must be a string")
        records.append({**record, "input": record.get("input", "")})
    if not records:
        raise DataError(f"{path}: no prompts")
    return records


def eval_records(path: str | Path, limit: int | None) -> list[dict[str, str]]:
    """The first ``limit`` held-out records, loaded as notebook 06 loads them."""
    from helpers.data import load_alpaca

    dataset = load_alpaca(path, extra_keys=["family"])
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    return [dict(row) for row in dataset]


def write_json(path: Path, data: Any, lines: bool = False) -> None:
    """``data`` as indented JSON, or (``lines``) a list as one JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = (
        [json.dumps(r, ensure_ascii=False) for r in data] if lines else [json.dumps(data, indent=2)]
    )
    path.write_text("".join(row + "\n" for row in rows), encoding="utf-8")


def answer_and_score(model, tokenizer, records: list, s: Settings, folder: Path, title: str):
    """Greedy answers scored with notebook 06's helpers; print the table, save report, answers."""
    from helpers.scoring import answer_token_budget, generate_answers, score

    a = s.args
    budget = a.max_new_tokens or answer_token_budget(tokenizer, records)
    answers = generate_answers(
        model, tokenizer, records, a.generation_batch_size, budget, a.progress
    )
    report = score(records, answers)
    rows = [
        {**r, "answer": ans, "exact_match": i.exact_match}
        for r, ans, i in zip(records, answers, report.items)
    ]
    write_json(folder / "answers.jsonl", rows, lines=True)
    write_json(folder / "report.json", report.to_dict())
    print(f"\n{title}: {len(records)} records, greedy, up to {budget} new tokens")
    print(report.table().to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"Saved {folder / 'report.json'} and {folder / 'answers.jsonl'}")
    return report


# --- the subcommands ------------------------------------------------------------------------------


def cmd_train(s: Settings) -> int:
    """Train a LoRA adapter: notebook 04's steps, through helpers.train.train_run."""
    from helpers.data import load_alpaca
    from helpers.train import is_main_process, train_run

    placement = placement_for(s)
    model_path = s.model_path()
    recipe = dataclasses.replace(s.recipe(model_path), report_to=resolve_report_to(s))
    out_dir = Path(s.sft["output_dir"])
    if recipe.report_to == "tensorboard":
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(out_dir / "tensorboard"))
    if is_main_process():
        resolved = {"max_steps": recipe.max_steps, "learning_rate": recipe.learning_rate}
        saved = save_config(
            s, out_dir, resolved, notes(s, placement, world_size=placement.world_size)
        )
        print(f"{placement.describe()}; config saved to {saved}")
    # SFTConfig's other fields set in the file or by a flag go to the trainer as they are
    skip = {*RECIPE_FIELDS, *SFT_COURSE}
    extra = {k: v for k, v in s.sft.items() if k in s.sources and k not in skip}
    run = {"device": placement.device, "precision": placement.precision, "gpu": placement.gpu_name}
    run["world_size"] = placement.world_size
    train_run(
        model_path,
        load_alpaca(s.args.data),
        out_dir,
        recipe,
        run,
        resume=s.args.resume,
        progress=s.args.progress,
        load_kwargs=placement.load_kwargs(s.args.load_in_4bit),
        trainer_kwargs={**placement.trainer_kwargs(), **extra},
    )
    if is_main_process() and recipe.report_to == "tensorboard":
        print(f"TensorBoard logs: tensorboard --logdir {out_dir / 'tensorboard'}")
    return 0


def cmd_infer(s: Settings) -> int:
    """Answer with the adapter: one prompt, a file of prompts, or (--eval) a scored set."""
    from helpers.scoring import generate_answers

    a, adapter = s.args, check_infer(s)
    placement = placement_for(s)
    single_process(placement, "infer")
    folder = Path(a.output_dir) / "infer"
    if a.eval:
        records = eval_records(a.prompts or a.eval_data, a.eval_limit)
    elif a.prompts:
        records = read_prompts(a.prompts)[: a.eval_limit]
    model, tokenizer = load_for_inference(str(adapter), s, placement)
    if a.instruction is not None:
        prompt = [{"instruction": a.instruction, "input": a.input}]
        print(generate_answers(model, tokenizer, prompt, 1, a.max_new_tokens or 128, False)[0])
        return 0
    save_config(s, folder, notes=notes(s, placement, adapter=adapter))
    if a.eval:
        answer_and_score(model, tokenizer, records, s, folder, f"Adapter {adapter}")
        return 0
    new_tokens = a.max_new_tokens or 128
    answers = generate_answers(
        model, tokenizer, records, a.generation_batch_size, new_tokens, a.progress
    )
    rows = [{**r, "answer": answer} for r, answer in zip(records, answers)]
    write_json(folder / "answers.jsonl", rows, lines=True)
    for row in rows:
        keys = ("instruction", "input", "answer")
        print(json.dumps({k: row[k] for k in keys}, ensure_ascii=False))
    print(f"Saved {folder / 'answers.jsonl'}")
    return 0


def cmd_baseline(s: Settings) -> int:
    """Score the base model, with no adapter, on EVAL_DATA (notebook 06's 'before' column)."""
    from helpers.data import load_alpaca
    from helpers.scoring import commonest_answers, compare, score

    a, placement = s.args, placement_for(s)
    single_process(placement, "baseline")
    records = eval_records(a.eval_data, a.eval_limit)
    folder = Path(a.output_dir) / "baseline"
    save_config(s, folder, notes=notes(s, placement))
    model, tokenizer = load_for_inference(s.model_path(), s, placement)
    report = answer_and_score(model, tokenizer, records, s, folder, f"Base model {a.model}")
    if Path(a.data).is_file():  # notebook 06's floor: each instruction's commonest training answer
        train = [dict(r) for r in load_alpaca(a.data)]
        floor = score(records, commonest_answers(train, records))
        write_json(folder / "commonest_answer.json", floor.to_dict())
        table = compare({"base": report, "commonest answer": floor})
        print("\nExact match beside the floor of giving each instruction its commonest answer:")
        print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    return 0


def cmd_merge(s: Settings) -> int:
    """Write a merged 16-bit model and check its greedy output against the adapter's."""
    from helpers.data import prompt_for

    a, adapter = s.args, require_adapter(s)
    placement = placement_for(s)
    single_process(placement, "merge")
    merged = a.merged_path()
    records = eval_records(a.eval_data, a.merge_check_prompts)
    prompts = [prompt_for(r["instruction"], r["input"]) for r in records]
    # On a GPU, Unsloth merges from a 4-bit load (it reads the base's 16-bit weights shard by
    # shard); on a CPU it merges only from a 16-bit load.
    four_bit = a.load_in_4bit and placement.device == "cuda"
    model, tokenizer = load_for_inference(str(adapter), s, placement, load_in_4bit=four_bit)
    print(f"Merging {adapter} into its base model and saving 16-bit weights to {merged} ...")
    model.save_pretrained_merged(str(merged), tokenizer, save_method="merged_16bit")
    save_config(s, merged, notes=notes(s, placement, adapter=adapter))
    if a.merge_check == "off":
        print(f"Merged model saved to {merged} (merge_check: off, output not compared).")
        return 0
    new_tokens = a.max_new_tokens or 32
    if is_quantized(model):
        # The merge folds the adapter into the base's 16-bit weights, not the 4-bit ones it trained
        # on: compare like with like, the adapter on the 16-bit base.
        print("Reloading the adapter on the 16-bit base weights, which the merge starts from ...")
        del model
        free_memory()
        model, tokenizer = load_for_inference(str(adapter), s, placement, load_in_4bit=False)
    expected = [greedy(model, tokenizer, p, new_tokens) for p in prompts]
    del model  # the adapter model and the merged model need not share the GPU
    free_memory()
    model, tokenizer = load_for_inference(str(merged), s, placement, load_in_4bit=False)
    results = [
        compare_greedy(model, tokenizer, p, e, new_tokens, a.merge_tolerance)
        for p, e in zip(prompts, expected)
    ]
    write_json(merged / "merge_check.json", results)
    for i, r in enumerate(results):
        gap = f"first differs at new token {r['first_difference']}, largest gap"
        detail = f" ({gap} {r['worst_gap_std']:.3f} std)" if r["verdict"] != "identical" else ""
        print(f"prompt {i}: {r['verdict']}{detail}")
    bad = sum(r["verdict"] == "mismatch" for r in results)
    if not bad:
        print(
            f"Merged model saved to {merged}; its greedy output matches the adapter's on "
            f"{len(results)} prompts."
        )
        return 0
    message = (
        f"the merged model at {merged} does not reproduce the adapter's greedy output on "
        f"{bad} of {len(results)} prompts (details in {merged / 'merge_check.json'})"
    )
    if a.merge_check == "strict":
        raise MergeCheckError(message)
    print(f"Warning: {message}")
    return 0


MERGED = {"merged_16bit": "merged_16bit", "merged_4bit": "merged_4bit_forced"}  # -> save_method
ALIASES = {"fast_quantized": "q8_0", "quantized": "q4_k_m"}  # Unsloth's aliases -> the file's


def check_export(s: Settings) -> tuple[Path, list[str], str | None]:
    """export's checks before anything loads: adapter, formats, token, llama.cpp (in that order).

    Returns the adapter, the GGUF methods and llama.cpp's folder (finding it sets
    UNSLOTH_LLAMA_CPP_PATH, which Unsloth reads once)."""
    from helpers.llama_cpp import LlamaCppError, check_quantization, llama_cpp_dir
    from helpers.secrets import MissingTokenError, hf_token

    a, adapter, where = s.args, require_adapter(s), s.source("formats")
    gguf = [f for f in a.formats if f not in MERGED and f != "ollama"]
    if "ollama" in a.formats and not gguf:
        raise ConfigError(
            f"{where}: field 'formats' has 'ollama' but no GGUF method for its FROM "
            "line; add one, e.g. --formats q8_0 ollama"
        )
    try:
        if a.push_to_hub is not None:
            hf_token(required=True)
    except MissingTokenError as err:
        raise ConfigError(
            f"{s.source('push_to_hub')}: field 'push_to_hub' is set, but: {err}"
        ) from None
    try:
        check_quantization(gguf)
    except LlamaCppError as err:
        others = f"besides the GGUF methods: {', '.join(MERGED)}, ollama"
        raise ConfigError(f"{where}: field 'formats': {err} ({others})") from None
    llama_cpp = (llama_cpp_dir() or "Unsloth fetches and builds its own") if gguf else None
    return adapter, gguf, llama_cpp


def cmd_export(s: Settings) -> int:
    """Export the adapter: merged 16-bit or 4-bit weights, GGUF files, an Ollama Modelfile."""
    from helpers.llama_cpp import export_errors, gguf_files
    from helpers.save import atomic_folder
    from helpers.tiny import carry_sentencepiece_model

    a, (adapter, gguf, llama_cpp) = s.args, check_export(s)
    placement = placement_for(s)
    single_process(placement, "export")
    if "merged_4bit" in a.formats and placement.device != "cuda":
        raise ConfigError(
            f"{s.source('formats')}: field 'formats' has 'merged_4bit', which Unsloth "
            f"writes on a GPU only; use merged_16bit or GGUF on this {placement.device}"
        )
    out = Path(a.output_dir) / "export"
    model, tokenizer = load_for_inference(str(adapter), s, placement)
    base = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
    carry_sentencepiece_model(tokenizer, base or "")  # the tiny model's tokenizer.model
    written = []

    def save_merged(fmt: str) -> None:
        with export_errors(out / fmt), atomic_folder(out / fmt) as staging:
            model.save_pretrained_merged(str(staging), tokenizer, save_method=MERGED[fmt])
        written.append(out / fmt)

    if "merged_16bit" in a.formats:
        save_merged("merged_16bit")
    if gguf:
        print(f"llama.cpp: {llama_cpp}")
        save_gguf(model, tokenizer, out / "gguf", gguf, "ollama" in a.formats)
        written += [*gguf_files(out / "gguf").values(), *(out / "gguf").rglob("Modelfile")]
    save_config(s, out, notes=notes(s, placement, adapter=adapter))
    if a.push_to_hub is not None:
        push(model, tokenizer, a.push_to_hub, out / "gguf" if gguf else None)
    if "merged_4bit" in a.formats:  # last: Unsloth folds the adapter into the loaded model in
        save_merged("merged_4bit")  # place, so an export after it would save the base model alone
    for path in written:
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        print(f"{sum(p.stat().st_size for p in files) / 1e6:10.1f} MB  {path}")
    return 0


def save_gguf(model, tokenizer, folder: Path, methods: list[str], ollama: bool) -> None:
    """GGUF files, and a Modelfile beside the first, into ``folder``: all or nothing."""
    from helpers.data import ALPACA_PROMPT
    from helpers.llama_cpp import LlamaCppError, alpaca_modelfile, export_errors, gguf_files
    from helpers.save import atomic_folder

    with export_errors(folder), atomic_folder(folder) as staging:
        model.save_pretrained_gguf(str(staging / "model"), tokenizer, quantization_method=methods)
        shutil.rmtree(staging / "model" / "merged_16bit", ignore_errors=True)  # Unsloth's fp32 copy
        files = gguf_files(staging)
        absent = [m for m in methods if m != "not_quantized" and ALIASES.get(m, m) not in files]
        if absent or not files:
            wanted = absent or methods
            raise LlamaCppError(
                f"{folder}: the export wrote no GGUF file for {wanted}; nothing was kept"
            )
        if ollama:  # beside the first method's file, in the staging folder: all or nothing
            first = files.get(ALIASES.get(methods[0], methods[0]), next(iter(files.values())))
            stops = [tokenizer.eos_token, "### Instruction:"]
            modelfile = alpaca_modelfile(first.name, ALPACA_PROMPT, stops=stops)
            (first.parent / "Modelfile").write_text(modelfile)


def push(model, tokenizer, repo: str, gguf_dir: Path | None) -> None:
    """Upload the merged 16-bit model (as notebook 08) and the GGUF folder's files, privately."""
    from huggingface_hub import HfApi

    from helpers.secrets import hf_token

    token = hf_token(required=True)
    print(f"Uploading to https://huggingface.co/{repo} with the token from {token.source} ...")
    try:
        api = HfApi(token=token.value)
        api.create_repo(repo, private=True, exist_ok=True)  # a new repository is public otherwise
        model.push_to_hub_merged(repo, tokenizer, save_method="merged_16bit", token=token.value)
        if gguf_dir is not None:
            patterns = ["*.gguf", "*Modelfile"]
            api.upload_folder(
                repo_id=repo,
                folder_path=str(gguf_dir),
                path_in_repo="gguf",
                allow_patterns=patterns,
            )
    except Exception as err:  # HTTP errors, offline mode, a bad name: one line, the token masked
        last = (str(err).strip().splitlines() or [""])[-1].replace(token.value, token.masked())
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = " HF_HUB_OFFLINE=1 is set: unset it to upload." if offline else ""
        raise PushError(
            f"uploading to {repo} failed ({type(err).__name__}: {last}); check that the "
            f"repository is 'your-name/name' and the token may write.{hint}"
        ) from None
    print(f"Uploaded to https://huggingface.co/{repo} (private: make it public in its settings)")


# --- the merge check ------------------------------------------------------------------------------


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
    """The prompt's token ids, then up to ``new_tokens`` greedy ones (stopping at EOS)."""
    import torch

    from helpers.scoring import max_new_tokens_only

    inputs = tokenizer([prompt], return_tensors="pt").to(model.device)
    pad = tokenizer.pad_token_id or tokenizer.eos_token_id
    with torch.no_grad(), max_new_tokens_only(model):
        out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, pad_token_id=pad)
    return out[0].tolist()


def compare_greedy(model, tokenizer, prompt, expected, new_tokens, tolerance) -> dict[str, Any]:
    """The model's greedy continuation against ``expected`` (the adapter's): identical, near-tie
    or mismatch. Where they differ, the model reads ``expected`` (teacher forcing), and each of its
    tokens must be within ``tolerance`` std-devs of the top logit: a tie broken the other way by
    16-bit rounding, not a different model."""
    import torch

    got = greedy(model, tokenizer, prompt, new_tokens)
    n = len(tokenizer([prompt])["input_ids"][0])
    result = {"prompt": prompt, "adapter_tokens": expected[n:], "merged_tokens": got[n:]}
    result |= {"verdict": "identical", "first_difference": None, "worst_gap_std": 0.0}
    if got == expected:
        return result
    diffs = [i for i, (a, b) in enumerate(zip(expected[n:], got[n:])) if a != b]
    result["first_difference"] = diffs[0] if diffs else min(len(expected), len(got)) - n
    ids = torch.tensor([expected], device=model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, n - 1 : -1].float()
    chosen = logits.gather(1, ids[0, n:, None])[:, 0]
    gaps = (logits.max(-1).values - chosen) / logits.std(-1).clamp_min(1e-6)
    result["worst_gap_std"] = float(gaps.max()) if len(gaps) else 0.0
    result["verdict"] = "near-tie" if result["worst_gap_std"] <= tolerance else "mismatch"
    return result


# --- the command ----------------------------------------------------------------------------------

COMMANDS = {
    "train": cmd_train,
    "infer": cmd_infer,
    "merge": cmd_merge,
    "baseline": cmd_baseline,
    "export": cmd_export,
}
PREFLIGHT = {"infer": check_infer, "merge": require_adapter, "export": check_export}


def main(argv: Sequence[str] | None = None) -> int:
    """``course COMMAND ...``: parse and check the settings, then run; errors print one line."""
    from helpers.data import DataError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(
            f"course: unknown command {command!r}; choose one of {', '.join(COMMANDS)}\n\n{USAGE}",
            file=sys.stderr,
        )
        return 2
    try:
        s = parse(command, rest, sft=False)  # all but train's SFTConfig: no torch yet
        if command in PREFLIGHT:
            PREFLIGHT[command](s)
        prepare_environment(s)
        if command == "train":
            s = parse(command, rest)  # TRL's SFTConfig loads transformers and torch
        import_unsloth()
        try:
            return COMMANDS[command](s)
        finally:
            end_process_group()
    except (ConfigError, DataError) as err:
        print(f"course {command}: error: {err}", file=sys.stderr)
        return 2
    except MergeCheckError as err:
        print(f"course {command}: merge check failed: {err}", file=sys.stderr)
        return 1
    except RuntimeError as err:  # a failed export (llama.cpp, a conversion, a full disk, an upload)
        if type(err).__name__ not in ("LlamaCppError", "PushError"):
            raise
        cause = "\n".join(str(err.__cause__).strip().splitlines()[-20:]) if err.__cause__ else ""
        print((f"{cause}\n" if cause else "") + f"course {command}: error: {err}", file=sys.stderr)
        return 1


def end_process_group() -> None:
    """Under ``accelerate launch``: leave the process group (torch warns at exit otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
