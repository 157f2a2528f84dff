"""The commands' typed configuration: defaults, then a YAML file, then command-line flags.

Every field of :class:`CourseConfig` can be set in a YAML file (``--config configs/tiny.yaml``) and
overridden on the command line (``--max-steps 20``); the command line wins over the file, the file
over the defaults. The LoRA and training fields have the names of :class:`helpers.recipe.Recipe` (the
names of the ``get_peft_model`` and ``SFTConfig`` arguments in notebooks 02 and 04), and their
defaults come from it, so notebooks and commands train with the same numbers. A bad value raises
:class:`ConfigError` naming the field and where it came from (the file, or the command line).

Example:
    >>> cfg = load_config(["--model", "tiny", "--r", "8"])
    >>> cfg.r, cfg.lora_alpha, cfg.source("r")
    (8, 16, 'the command line')
    >>> to_yaml(cfg).splitlines()[0]
    'model: tiny'
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from helpers.recipe import Recipe

_R = Recipe()  # the recipe's defaults: the single source of the numbers below
CONFIG_FILE_NAME = "course_config.yaml"  # the resolved config, saved beside each command's outputs
RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))


class ConfigError(ValueError):
    """A configuration value or file that cannot be used, naming the field and where it came from."""


@dataclass
class CourseConfig:
    """Settings for `course train | infer | merge | baseline` (defaults < --config YAML < flags)."""

    # --- model, data and outputs -------------------------------------------------------------
    model: str = "auto"
    """Base model: 'auto' (8B on a GPU, tiny elsewhere), 'tiny', a hub name or a local folder."""
    data: str = "data/train.jsonl"
    """Training data: Alpaca records in .jsonl or .csv (relative paths start at the current folder)."""
    eval_data: str = "data/eval.jsonl"
    """Held-out records with a 'family' field, scored by baseline and infer --eval."""
    output_dir: str = "outputs/run"
    """Where outputs go: lora_adapter/, checkpoints/, tensorboard/, baseline/, infer/, merged_16bit/."""
    adapter: str | None = None
    """Adapter folder for infer and merge (default: OUTPUT_DIR/lora_adapter)."""

    # --- LoRA (notebook 02) --------------------------------------------------------------------
    r: int = _R.r
    """LoRA rank."""
    lora_alpha: int = _R.lora_alpha
    """LoRA scaling numerator (the update is scaled by lora_alpha / r)."""
    lora_dropout: float = _R.lora_dropout
    """Dropout on the LoRA path, in [0, 1)."""
    target_modules: list[str] = field(default_factory=lambda: list(_R.target_modules))
    """Projection matrices that get adapters."""
    use_dora: bool = _R.use_dora
    """Weight-decomposed LoRA (DoRA) instead of plain LoRA."""

    # --- training (notebook 04) ----------------------------------------------------------------
    max_seq_length: int = _R.max_seq_length
    """Longest training sequence, in tokens."""
    per_device_train_batch_size: int = _R.per_device_train_batch_size
    """Examples per step on each GPU (or the CPU)."""
    gradient_accumulation_steps: int = _R.gradient_accumulation_steps
    """Steps whose gradients add up before each optimizer update."""
    max_steps: int | None = None
    """Optimizer updates (default: the recipe's, 60 for 8B and 200 for the tiny model)."""
    learning_rate: float | None = None
    """Peak learning rate (default: the recipe's, 2e-4 for 8B and 5e-3 for the tiny model)."""
    warmup_steps: int = _R.warmup_steps
    """Steps of linear warm-up."""
    weight_decay: float = _R.weight_decay
    """AdamW weight decay."""
    lr_scheduler_type: str = _R.lr_scheduler_type
    """Learning-rate schedule after warm-up (linear, cosine, constant, ...)."""
    optim: str = _R.optim
    """Optimizer (adamw_8bit on a GPU; on a CPU Unsloth swaps in a torch optimizer)."""
    seed: int = _R.seed
    """Random seed for LoRA initialisation and data order."""
    save_steps: int = _R.save_steps
    """Checkpoint every N steps."""
    use_gradient_checkpointing: Literal["unsloth"] | bool = _R.use_gradient_checkpointing
    """Recompute activations to save memory: 'unsloth' (offloaded, fastest), true or false."""
    resume: bool = True
    """Resume from the last complete checkpoint in OUTPUT_DIR/checkpoints (--no-resume starts over)."""

    # --- hardware and logging ----------------------------------------------------------------
    device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    """Where to run: auto picks CUDA, then Apple MPS, then the CPU."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """auto: bf16 on GPUs that have it, fp16 on older ones (T4), the CPU's own choice on a CPU."""
    load_in_4bit: bool = True
    """Load the base model in 4-bit (QLoRA) on a GPU; on a CPU Unsloth loads 16-bit weights anyway."""
    report_to: Literal["tensorboard", "wandb", "none"] = "tensorboard"
    """Where training logs go: TensorBoard (OUTPUT_DIR/tensorboard), Weights & Biases, or nowhere."""
    run_name: str | None = None
    """A name for the run in TensorBoard / W&B."""
    progress: bool = True
    """Show progress bars."""

    # --- infer and baseline (notebooks 05 and 06) ------------------------------------------------
    instruction: str | None = None
    """infer: the instruction of one prompt."""
    input: str = ""
    """infer: the input of that prompt (may be empty)."""
    prompts: str | None = None
    """infer: a .jsonl file of prompts ('instruction', optional 'input'); with --eval, Alpaca records."""
    eval: bool = False
    """infer: score the answers (of --prompts, or of EVAL_DATA) with the helpers of notebook 06."""
    eval_limit: int | None = None
    """Score only the first N records (quick checks)."""
    max_new_tokens: int | None = None
    """Generation length (default: when scoring, the longest expected answer + 8; else 128)."""
    generation_batch_size: int = 32
    """Prompts per generation batch."""

    # --- merge (notebook 05's export) ------------------------------------------------------------
    merged_dir: str | None = None
    """merge: where the merged 16-bit model goes (default: OUTPUT_DIR/merged_16bit)."""
    merge_check: Literal["strict", "warn", "off"] = "strict"
    """merge: compare greedy output of merged model and adapter; strict raises on a mismatch."""
    merge_check_prompts: int = 3
    """merge: how many EVAL_DATA prompts the check uses."""
    merge_tolerance: float = 0.1
    """merge: a token counts as the same greedy choice within this many logit std-devs of the top."""

    def source(self, name: str) -> str:
        """Where the value of field ``name`` came from: 'the defaults', the YAML file, or 'the command line'."""
        return getattr(self, "_sources", {}).get(name, "the defaults")

    def config_file(self) -> str | None:
        """The YAML file this config was read from, if any."""
        return getattr(self, "_file", None)

    def model_path(self) -> str:
        """The model to load, resolved by :func:`helpers.models.choose_model` ('tiny' becomes a local folder)."""
        from helpers.models import choose_model

        return choose_model(self.model)

    def recipe(self, model_path: str | None = None) -> Recipe:
        """The :class:`Recipe` for this config: the model's recipe with every recipe field set here applied."""
        base = Recipe.for_model(model_path or self.model_path())
        chosen = {n: getattr(self, n) for n in RECIPE_FIELDS if hasattr(self, n) and getattr(self, n) is not None}
        chosen["target_modules"] = list(self.target_modules)
        chosen["report_to"] = base.report_to  # the commands set logging themselves (see helpers.cli)
        return dataclasses.replace(base, **chosen)

    def adapter_path(self) -> Path:
        """The adapter folder: ADAPTER, else OUTPUT_DIR/lora_adapter."""
        return Path(self.adapter) if self.adapter else Path(self.output_dir) / "lora_adapter"

    def merged_path(self) -> Path:
        """The merged model folder: MERGED_DIR, else OUTPUT_DIR/merged_16bit."""
        return Path(self.merged_dir) if self.merged_dir else Path(self.output_dir) / "merged_16bit"


FIELDS = {f.name: f for f in fields(CourseConfig)}


# --- checking values -------------------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    """A readable name for a field's type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is list:
        return "a list of " + {str: "strings", int: "integers", float: "numbers"}.get(args[0], str(args[0]))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """(ok, value) for ``value`` read from YAML against type ``tp``; numeric strings like '2e-4' become floats."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if isinstance(value, bool) and not value and "off" in args:
            value = "off"  # YAML 1.1 reads an unquoted `off` as false
        return (value in args and type(value) in {type(a) for a in args}), value
    if args and origin is not list:  # a union: the first member that accepts the value
        for arg in args:
            ok, out = _coerce(value, arg)
            if ok:
                return True, out
        return False, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        items = [_coerce(v, args[0]) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str):  # YAML 1.1 reads 2e-4 (no dot) as a string
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return False, value
    if tp is str:
        return isinstance(value, str), value
    return True, value


_HINTS = typing.get_type_hints(CourseConfig)
ALIASES = {  # names people try first -> the field (the recipe keeps the get_peft_model / SFTConfig names)
    "rank": "r", "lora_r": "r", "lora_rank": "r", "alpha": "lora_alpha", "dropout": "lora_dropout",
    "dora": "use_dora", "lr": "learning_rate", "steps": "max_steps", "batch_size": "per_device_train_batch_size",
    "grad_accum": "gradient_accumulation_steps", "gradient_checkpointing": "use_gradient_checkpointing",
    "output": "output_dir", "out": "output_dir", "train_data": "data", "model_name": "model",
    "dtype": "precision", "scheduler": "lr_scheduler_type", "max_length": "max_seq_length",
}


def _rules(cfg: CourseConfig) -> list[tuple[str, str]]:
    """(field, problem) for every value out of range."""
    problems = []

    def need(name: str, ok: bool, what: str) -> None:
        """Record a problem with field ``name`` unless ``ok``."""
        if not ok:
            problems.append((name, f"must be {what}, got {getattr(cfg, name)!r}"))

    for name in ("r", "lora_alpha", "max_seq_length", "per_device_train_batch_size",
                 "gradient_accumulation_steps", "save_steps", "generation_batch_size"):
        need(name, getattr(cfg, name) >= 1, "at least 1")
    for name in ("max_steps", "eval_limit", "max_new_tokens"):
        need(name, getattr(cfg, name) is None or getattr(cfg, name) >= 1, "at least 1 (or null for the default)")
    need("merge_check_prompts", cfg.merge_check_prompts >= 1, "at least 1")
    need("lora_dropout", 0.0 <= cfg.lora_dropout < 1.0, "in [0, 1)")
    need("learning_rate", cfg.learning_rate is None or 0 < cfg.learning_rate < 1, "between 0 and 1 (e.g. 2e-4)")
    need("warmup_steps", cfg.warmup_steps >= 0, "0 or more")
    need("weight_decay", cfg.weight_decay >= 0, "0 or more")
    need("merge_tolerance", cfg.merge_tolerance >= 0, "0 or more")
    need("target_modules", len(cfg.target_modules) > 0 and all(m.strip() for m in cfg.target_modules),
         "a non-empty list of module names (e.g. [q_proj, v_proj])")
    for name in ("model", "data", "eval_data", "output_dir", "optim", "lr_scheduler_type"):
        need(name, bool(str(getattr(cfg, name)).strip()), "a non-empty string")
    if cfg.instruction is not None and cfg.prompts is not None:
        problems.append(("prompts", "cannot be used together with 'instruction': give one prompt or a file"))
    return problems


def validate(cfg: CourseConfig) -> CourseConfig:
    """Check every value; raise ConfigError naming the first bad field and its source."""
    for name, problem in _rules(cfg):
        raise ConfigError(f"{cfg.source(name)}: field '{name}' {problem}")
    return cfg


# --- loading -------------------------------------------------------------------------------------

def read_yaml(path: str | Path) -> dict[str, Any]:
    """The checked values of a YAML config file (unknown or mistyped fields raise ConfigError naming the file)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of field: value, got {type(data).__name__}")
    values = {}
    for key, value in data.items():
        if key not in FIELDS:
            if key in ALIASES:
                raise ConfigError(f"{path}: unknown field '{key}'; the course calls it '{ALIASES[key]}'")
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known fields: {', '.join(FIELDS)}"
            raise ConfigError(f"{path}: unknown field '{key}'{hint}")
        ok, value = _coerce(value, _HINTS[key])
        if not ok:
            raise ConfigError(f"{path}: field '{key}' must be {_type_name(_HINTS[key])}, got {data[key]!r}")
        values[key] = value
    return values


def split_config_flag(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """Take ``--config PATH`` (or ``--config=PATH``) out of ``args``: (path or None, the other args)."""
    path, rest, it = None, [], iter(args)
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


def load_config(args: Sequence[str] = (), config_path: str | Path | None = None, prog: str = "course",
                description: str | None = None) -> CourseConfig:
    """Defaults, then the YAML file (``--config`` in ``args`` or ``config_path``), then the flags in ``args``."""
    import tyro

    flag_path, rest = split_config_flag(args)
    path = flag_path or config_path
    from_file = read_yaml(path) if path else {}
    base = CourseConfig(**from_file)
    cfg = tyro.cli(CourseConfig, default=base, args=rest, prog=prog,
                   description=description or CourseConfig.__doc__)
    sources = {}
    for f in FIELDS:
        if getattr(cfg, f) != getattr(base, f):
            sources[f] = "the command line"
        elif f in from_file:
            sources[f] = str(path)
    cfg._sources, cfg._file = sources, (str(path) if path else None)
    return validate(cfg)


def to_dict(cfg: CourseConfig, resolved: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config's fields as plain data (``resolved`` fills fields left to the recipe, e.g. max_steps)."""
    data = {f: getattr(cfg, f) for f in FIELDS}
    for key, value in (resolved or {}).items():
        if key in FIELDS and data[key] is None:
            data[key] = value
    return data


def to_yaml(cfg: CourseConfig, resolved: Mapping[str, Any] | None = None, header: str = "") -> str:
    """The config as YAML that :func:`load_config` reads back (``header`` lines become comments)."""
    import yaml

    body = yaml.safe_dump(to_dict(cfg, resolved), sort_keys=False, default_flow_style=None, width=100)
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + body


def save_config(cfg: CourseConfig, folder: str | Path, resolved: Mapping[str, Any] | None = None,
                notes: Sequence[str] = ()) -> Path:
    """Write the resolved config to ``folder/course_config.yaml`` and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    header = "\n".join(["The configuration this run used; rerun it with: course <command> --config <this file>",
                        f"read from: {cfg.config_file() or 'no file (defaults and flags)'}", *notes])
    path = folder / CONFIG_FILE_NAME
    path.write_text(to_yaml(cfg, resolved, header), encoding="utf-8")
    return path


# --- hardware: device, precision and the process's place in a multi-GPU run -------------------------

@dataclass(frozen=True)
class Hardware:
    """What this machine offers: CUDA (and whether its GPU has bf16) and Apple MPS."""

    cuda: bool
    bf16: bool = False
    mps: bool = False
    gpu_name: str | None = None

    @classmethod
    def detect(cls) -> "Hardware":
        """Ask torch. bf16 counts only where the GPU has it natively (Ampere+), not emulated as on a T4."""
        import torch

        if torch.cuda.is_available():
            return cls(cuda=True, bf16=torch.cuda.is_bf16_supported(including_emulation=False),
                       gpu_name=torch.cuda.get_device_name())
        mps = getattr(torch.backends, "mps", None)
        return cls(cuda=False, mps=bool(mps and mps.is_available()))


@dataclass(frozen=True)
class Placement:
    """Where this process runs and in what precision; under ``accelerate launch``, its rank too."""

    device: str  # "cuda" | "mps" | "cpu"
    precision: str  # "bf16" | "fp16" | "fp32" | "auto" (on a CPU: Unsloth's choice)
    local_rank: int = 0
    world_size: int = 1
    gpu_name: str | None = None
    forced_cpu: bool = False  # device: cpu was asked for (not just the fallback)

    @property
    def distributed(self) -> bool:
        """True under ``accelerate launch`` / ``torchrun`` with more than one process."""
        return self.world_size > 1

    def dtype(self):
        """The torch dtype to load weights in, or None to let Unsloth choose (the CPU default)."""
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(self.precision)

    def load_kwargs(self, load_in_4bit: bool = True) -> dict[str, Any]:
        """Extra ``FastLanguageModel.from_pretrained`` arguments: dtype, 4-bit, and one GPU per DDP process."""
        kwargs: dict[str, Any] = {"dtype": self.dtype(), "load_in_4bit": load_in_4bit}
        if self.distributed and self.device == "cuda":
            kwargs["device_map"] = {"": self.local_rank}  # each process holds a whole copy on its own GPU
        return kwargs

    def trainer_kwargs(self) -> dict[str, Any]:
        """Extra ``SFTConfig`` arguments: the mixed-precision flag, and DDP settings under accelerate."""
        kwargs: dict[str, Any] = {}
        if self.device in ("cuda", "mps"):  # on a CPU, Unsloth sets up precision itself
            kwargs = {"fp16": self.precision == "fp16", "bf16": self.precision == "bf16"}
        if self.forced_cpu:
            kwargs["use_cpu"] = True  # keep the trainer off an Apple GPU too
        if self.distributed:
            kwargs["ddp_find_unused_parameters"] = False  # LoRA: the frozen weights never get gradients
        return kwargs

    def describe(self) -> str:
        """One line for the log."""
        where = f"{self.device}" + (f" ({self.gpu_name})" if self.gpu_name else "")
        rank = f", process {self.local_rank} of {self.world_size}" if self.distributed else ""
        what = "Unsloth's CPU dtype" if self.precision == "auto" else self.precision
        return f"device: {where}, precision: {what}{rank}"


def resolve_placement(cfg: CourseConfig, hardware: Hardware | None = None,
                      env: Mapping[str, str] | None = None) -> Placement:
    """Pick device and precision from ``cfg.device`` / ``cfg.precision`` and the hardware; ConfigError if impossible."""
    hw = hardware or Hardware.detect()
    env = os.environ if env is None else env
    where = cfg.source("device")
    device = cfg.device
    if device == "auto":
        device = "cuda" if hw.cuda else "mps" if hw.mps else "cpu"
    elif device == "cuda" and not hw.cuda:
        raise ConfigError(f"{where}: field 'device' is 'cuda' but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    elif device == "mps" and not hw.mps:
        raise ConfigError(f"{where}: field 'device' is 'mps' but Apple MPS is not available; use 'auto' or 'cpu'")
    elif device == "cpu" and hw.cuda:
        raise ConfigError(f"{where}: field 'device' is 'cpu' but a CUDA GPU is visible to this process; "
                          "the command hides it only before torch is imported (or set CUDA_VISIBLE_DEVICES='')")
    precision, why = cfg.precision, cfg.source("precision")
    if device == "cuda":
        if precision == "auto":
            precision = "bf16" if hw.bf16 else "fp16"
        elif precision == "bf16" and not hw.bf16:
            raise ConfigError(f"{why}: field 'precision' is 'bf16' but this GPU ({hw.gpu_name}) has no native "
                              "bfloat16 (it needs compute capability 8.0+, e.g. A100, L4, RTX 30xx); "
                              "use 'fp16' or 'auto'")
    elif device == "mps":
        if precision == "auto":
            precision = "fp32"  # no autocast by default on MPS: fp16 AMP there is not reliable for training
    else:
        if precision == "fp16":
            raise ConfigError(f"{why}: field 'precision' is 'fp16' but the device is the CPU, which has no fast "
                              "float16; use 'auto' (Unsloth picks bf16 or fp32) or 'fp32'")
    world_size = int(env.get("WORLD_SIZE", "1") or 1)
    local_rank = int(env.get("LOCAL_RANK", "0") or 0)
    return Placement(device=device, precision=precision, local_rank=local_rank, world_size=world_size,
                     gpu_name=hw.gpu_name if device == "cuda" else None, forced_cpu=cfg.device == "cpu")
