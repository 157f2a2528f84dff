"""The commands' typed configuration: defaults, then a YAML file, then command-line flags.

Every field of :class:`CourseConfig` can be set in a YAML file (``--config configs/tiny.yaml``) and
overridden on the command line (``--max-steps 20``). Two libraries do the work: ``msgspec`` checks the
YAML values against the field types, ``tyro`` parses the flags. The LoRA and training fields have the
names of the ``get_peft_model`` and ``SFTConfig`` arguments, and their defaults come from
:class:`helpers.recipe.Recipe`, the numbers the notebooks write (``tests/test_recipe_parity.py``).
A bad value raises :class:`ConfigError` naming the field and where it came from.

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from helpers.recipe import Recipe
from helpers.runtime import RuntimeInfo

_R = Recipe()  # the recipe's defaults: the single source of the numbers below
CONFIG_FILE_NAME = "course_config.yaml"  # the resolved config, saved beside each command's outputs
RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))


class ConfigError(ValueError):
    """A configuration value or file that cannot be used, naming the field and where it came from."""


@dataclass
class CourseConfig:
    """Settings for `course train | infer | merge | baseline | export` (defaults < --config YAML < flags)."""

    # --- model, data and outputs -------------------------------------------------------------
    model: str = "auto"
    """Base model: 'auto' (8B on a GPU, SmolLM2-135M-Instruct elsewhere), 'smollm2', 'tiny', a hub name or a local folder."""
    data: str = "data/train.jsonl"
    """Training data: Alpaca records in .jsonl, .json or .csv (relative paths start at the current folder)."""
    eval_data: str = "data/eval.jsonl"
    """Held-out records with a 'family' field, scored by baseline and infer --eval."""
    output_dir: str = "outputs/run"
    """Where outputs go: lora_adapter/, checkpoints/, tensorboard/, baseline/, infer/, merged_16bit/, gguf/."""
    adapter: str | None = None
    """Adapter folder for infer, merge and export (default: OUTPUT_DIR/lora_adapter)."""

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
    """Optimizer updates (default: the recipe's for the model; see helpers/recipe.py)."""
    learning_rate: float | None = None
    """Peak learning rate (default: the recipe's for the model)."""
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
    """Recompute activations to save memory: 'unsloth' (offloaded to CPU RAM), True or False (as
    the flag takes them; standard checkpointing scaled better on two GPUs)."""
    packing: bool = _R.packing
    """Pack short examples into full 2,048-token rows (notebook 04 measures why the course does not)."""
    padding_free: bool = _R.padding_free
    """Batches without pad tokens, one example per row (GPU; Unsloth's CPU backend keeps padded batches)."""
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

    # --- merge and export (notebooks 05 and 08) ------------------------------------------------
    merged_dir: str | None = None
    """merge: where the merged 16-bit model goes (default: OUTPUT_DIR/merged_16bit)."""
    merge_check: Literal["strict", "warn", "off"] = "strict"
    """merge: compare greedy output of merged model and adapter; strict raises on a mismatch."""
    merge_check_prompts: int = 3
    """merge: how many EVAL_DATA prompts the check uses."""
    merge_tolerance: float = 0.1
    """merge: a token counts as the same greedy choice within this many logit std-devs of the top."""
    formats: list[str] = field(default_factory=lambda: ["merged_16bit", "q8_0", "ollama"])
    """export: what to write: merged_16bit, merged_4bit, GGUF quantizations (q8_0, q4_k_m, f16, ...), ollama."""
    push_to_hub: str | None = None
    """export: also upload to this Hub repository ('your-name/name'): the merged 16-bit model and the GGUF files;
    the token comes from $HF_TOKEN or the Colab/Kaggle secret HF_TOKEN, never from a flag or this file."""

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
        chosen = {n: getattr(self, n) for n in RECIPE_FIELDS if getattr(self, n, None) is not None}
        chosen["target_modules"] = list(self.target_modules)
        chosen["report_to"] = base.report_to  # the commands set logging themselves (see tools.cli)
        return dataclasses.replace(base, **chosen)

    def adapter_path(self) -> Path:
        """The adapter folder: ADAPTER, else OUTPUT_DIR/lora_adapter."""
        return Path(self.adapter) if self.adapter else Path(self.output_dir) / "lora_adapter"

    def merged_path(self) -> Path:
        """The merged model folder: MERGED_DIR, else OUTPUT_DIR/merged_16bit."""
        return Path(self.merged_dir) if self.merged_dir else Path(self.output_dir) / "merged_16bit"


FIELDS = [f.name for f in fields(CourseConfig)]


def _rules(cfg: CourseConfig) -> list[tuple[str, str]]:
    """(field, problem) for every value out of range (the types are checked by msgspec and tyro)."""
    at_least_1 = ["r", "lora_alpha", "max_seq_length", "per_device_train_batch_size", "gradient_accumulation_steps",
                  "save_steps", "generation_batch_size", "merge_check_prompts"]
    checks = [(n, getattr(cfg, n) >= 1, "at least 1") for n in at_least_1]
    checks += [(n, getattr(cfg, n) is None or getattr(cfg, n) >= 1, "at least 1 (or null for the default)")
               for n in ("max_steps", "eval_limit", "max_new_tokens")]
    checks += [(n, bool(str(getattr(cfg, n)).strip()), "a non-empty string")
               for n in ("model", "data", "eval_data", "output_dir", "optim", "lr_scheduler_type")]
    checks += [
        ("lora_dropout", 0.0 <= cfg.lora_dropout < 1.0, "in [0, 1)"),
        ("learning_rate", cfg.learning_rate is None or 0 < cfg.learning_rate < 1, "between 0 and 1 (e.g. 2e-4)"),
        ("warmup_steps", cfg.warmup_steps >= 0, "0 or more"),
        ("weight_decay", cfg.weight_decay >= 0, "0 or more"),
        ("merge_tolerance", cfg.merge_tolerance >= 0, "0 or more"),
        ("target_modules", bool(cfg.target_modules) and all(m.strip() for m in cfg.target_modules),
         "a non-empty list of module names (e.g. [q_proj, v_proj])"),
        ("formats", bool(cfg.formats), "a non-empty list (e.g. [merged_16bit, q8_0, ollama])"),
    ]
    problems = [(name, f"must be {what}, got {getattr(cfg, name)!r}") for name, ok, what in checks if not ok]
    if cfg.instruction is not None and cfg.prompts is not None:
        problems.append(("prompts", "cannot be used together with 'instruction': give one prompt or a file"))
    return problems


def validate(cfg: CourseConfig) -> CourseConfig:
    """Check every value; raise ConfigError naming the first bad field and its source."""
    for name, problem in _rules(cfg):
        raise ConfigError(f"{cfg.source(name)}: field '{name}' {problem}")
    return cfg


def _yaml_loader():
    """PyYAML's SafeLoader with YAML 1.2 scalars: 2e-4 is a float and only true/false are booleans (not on/off)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
                                      for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
    return Loader


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The checked values of a YAML config file; unknown or mistyped fields raise ConfigError naming the file."""
    import msgspec
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_yaml_loader())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of field: value, got {type(data).__name__}")
    for key in data:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1, cutoff=0.75)
            hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(FIELDS)}"
            raise ConfigError(f"{path}: unknown field '{key}'; {hint}")
    try:
        checked = msgspec.convert(dict(data), CourseConfig)
    except msgspec.ValidationError as err:  # e.g. "Expected `int`, got `str` - at `$.r`"
        message, _, where = str(err).partition(" - at `$.")
        name = where.rstrip("`").split(".")[0].split("[")[0]
        raise ConfigError(f"{path}: field '{name}': {message[0].lower() + message[1:]}, got {data.get(name)!r}") from None
    return {key: getattr(checked, key) for key in data}


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
    cfg = tyro.cli(CourseConfig, default=base, args=rest, prog=prog, description=description or CourseConfig.__doc__)
    sources = {f: "the command line" for f in FIELDS if getattr(cfg, f) != getattr(base, f)}
    sources.update({f: str(path) for f in from_file if f not in sources})
    cfg._sources, cfg._file = sources, (str(path) if path else None)
    return validate(cfg)


def to_yaml(cfg: CourseConfig, resolved: Mapping[str, Any] | None = None, header: str = "") -> str:
    """The config as YAML that :func:`load_config` reads back (``resolved`` fills fields left to the recipe)."""
    import yaml

    data = {f: getattr(cfg, f) for f in FIELDS}
    data.update({k: v for k, v in (resolved or {}).items() if k in data and data[k] is None})
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    return "".join(f"# {line}\n" for line in header.splitlines()) + body


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


def resolve_placement(cfg: CourseConfig, hardware: RuntimeInfo | None = None,
                      env: Mapping[str, str] | None = None) -> Placement:
    """Pick device and precision from ``cfg.device`` / ``cfg.precision`` and the hardware; ConfigError if impossible."""
    from helpers.runtime import runtime_info

    hw = hardware or runtime_info()
    env = os.environ if env is None else env
    where, why = cfg.source("device"), cfg.source("precision")
    device, precision = cfg.device, cfg.precision
    if device == "auto":
        device = hw.device
    elif device == "cuda" and hw.device != "cuda":
        raise ConfigError(f"{where}: field 'device' is 'cuda' but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    elif device == "mps" and hw.device != "mps":
        raise ConfigError(f"{where}: field 'device' is 'mps' but Apple MPS is not available; use 'auto' or 'cpu'")
    elif device == "cpu" and hw.device == "cuda":
        raise ConfigError(f"{where}: field 'device' is 'cpu' but a CUDA GPU is visible to this process; "
                          "the command hides it only before torch is imported (or set CUDA_VISIBLE_DEVICES='')")
    if device == "cuda":
        if precision == "auto":
            precision = "bf16" if hw.bf16 else "fp16"
        elif precision == "bf16" and not hw.bf16:
            raise ConfigError(f"{why}: field 'precision' is 'bf16' but this GPU ({hw.gpu_name}) has no native "
                              "bfloat16 (it needs compute capability 8.0+, e.g. A100, L4, RTX 30xx); "
                              "use 'fp16' or 'auto'")
    elif device == "mps" and precision == "auto":
        precision = "fp32"  # no autocast by default on MPS: fp16 AMP there is not reliable for training
    elif device == "cpu" and precision == "fp16":
        raise ConfigError(f"{why}: field 'precision' is 'fp16' but the device is the CPU, which has no fast "
                          "float16; use 'auto' (Unsloth picks bf16 or fp32) or 'fp32'")
    return Placement(device=device, precision=precision, local_rank=int(env.get("LOCAL_RANK", "0") or 0),
                     world_size=int(env.get("WORLD_SIZE", "1") or 1),
                     gpu_name=hw.gpu_name if device == "cuda" else None, forced_cpu=cfg.device == "cpu")
