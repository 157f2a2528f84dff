"""The commands' settings (tools.cli.parse): defaults from the recipe, YAML < flags precedence,
clear errors naming the field and where it came from, each command's own options, and the device
and precision choice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.recipe import Recipe
from helpers.runtime import RuntimeInfo
from tools.cli import COMMANDS, ConfigError, parse, read_yaml, resolve_placement, save_config

ROOT = Path(__file__).resolve().parent.parent


def Hardware(cuda: bool, bf16: bool = False, mps: bool = False, gpu_name: str | None = None):
    """The runtime facts resolve_placement reads, as helpers.runtime.runtime_info reports them."""
    device = "cuda" if cuda else "mps" if mps else "cpu"
    return RuntimeInfo(device=device, bf16=bf16, gpu_name=gpu_name)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_recipe():
    s = parse("train", [])
    assert s.recipe("unsloth/llama-3-8b-bnb-4bit") == Recipe.for_model(
        "unsloth/llama-3-8b-bnb-4bit"
    )
    assert s.sft["report_to"] == "tensorboard" and s.args.device == "auto"
    sft_numbers = ["max_steps", "learning_rate", "optim", "weight_decay", "warmup_steps", "seed"]
    assert {n: s.sft[n] for n in sft_numbers} == {n: getattr(Recipe(), n) for n in sft_numbers}
    assert s.lora.use_gradient_checkpointing == Recipe().use_gradient_checkpointing


def test_tiny_model_gets_the_tiny_recipe(tmp_path):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "course_model.json").write_text("{}")  # the marker helpers.models.is_tiny looks for
    assert parse("train", []).recipe(str(tiny)) == Recipe.for_model(str(tiny))
    assert parse("train", ["--max-steps", "7"]).recipe(str(tiny)).max_steps == 7
    path = write(tmp_path, "learning_rate: 0.01\nmax_steps: null\n")  # null: the model's recipe
    recipe = parse("train", ["--config", str(path)]).recipe(str(tiny))
    assert (recipe.learning_rate, recipe.max_steps) == (0.01, Recipe.for_model(str(tiny)).max_steps)


def test_precedence_flags_over_yaml_over_defaults(tmp_path):
    path = write(tmp_path, "r: 8\nlora_alpha: 32\nmax_steps: 11\nlearning_rate: 0.001\n")
    s = parse("train", ["--config", str(path), "--r", "4", "--learning_rate", "0.002"])
    assert (s.lora.r, s.lora.lora_alpha, s.lora.lora_dropout) == (4, 32, Recipe().lora_dropout)
    assert (s.sft["max_steps"], s.sft["learning_rate"]) == (11, 0.002)
    assert s.source("r") == s.source("learning_rate") == "the command line"
    assert s.source("lora_alpha") == s.source("max_steps") == str(path)
    assert s.source("lora_dropout") == "the defaults"
    assert parse("train", [f"--config={path}"]).lora.r == 8  # the = form too


def test_yaml_is_read_as_yaml_1_2(tmp_path):
    path = write(
        tmp_path,
        "learning_rate: 2e-4\nmerge_check: off\nuse_gradient_checkpointing: false\n"
        "target_modules: [q_proj, v_proj]\n",
    )
    s = parse("train", ["--config", str(path)])
    assert s.sft["learning_rate"] == pytest.approx(2e-4)  # YAML 1.1 would read 2e-4 as a string
    assert parse("merge", ["--config", str(path)]).args.merge_check == "off"  # and off as false
    assert s.lora.use_gradient_checkpointing is False
    assert s.recipe("m").target_modules == ["q_proj", "v_proj"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("lora_alpah: 8\n", "unknown field 'lora_alpah'; did you mean 'lora_alpha'?"),
        ("lr: 0.001\n", "unknown field 'lr'; `course train --help` lists them"),
        ("r: eight\n", "field 'r': invalid int value: 'eight'"),
        ("use_dora: maybe\n", "field 'use_dora': Truthy value expected: got maybe"),
        ("device: gpu\n", "field 'device': invalid choice: 'gpu'"),
        ("optim: adamw_9bit\n", "field 'optim': invalid choice: 'adamw_9bit'"),
        ("target_modules: q_proj\n", "field 'target_modules' must be a list (e.g. [a, b])"),
        ("r: [8]\n", "field 'r' must be a single value, got [8]"),
        ("r: null\n", "field 'r' cannot be null"),
        ("lora_dropout: 1.5\n", "field 'lora_dropout' must be in [0, 1), got 1.5"),
        ("max_steps: 0\n", "field 'max_steps' must be at least 1"),
        ("learning_rate: 3\n", "field 'learning_rate' must be between 0 and 1"),
        ("report_to: tensorbord\n", "field 'report_to' must be tensorboard, wandb or none"),
        ("target_modules: []\n", "field 'target_modules': expected at least one argument"),
        ("- r\n- 8\n", "expected a mapping of field: value, got list"),
        ("r: [8\n", "not valid YAML"),
    ],
)
def test_bad_yaml_names_the_file_and_the_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        parse("train", ["--config", str(path)])
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_a_shared_file_holds_every_commands_fields_but_no_unknown_one(tmp_path):
    text = "model: tiny\nr: 8\nmax_steps: 5\nformats: [q8_0, ollama]\npush_to_hub: me/tiny\n"
    shared = write(tmp_path, text)
    assert parse("infer", ["--config", str(shared)]).args.model == "tiny"  # r, formats: not infer's
    export = parse("export", ["--config", str(shared)]).args
    assert (export.formats, export.push_to_hub) == (["q8_0", "ollama"], "me/tiny")
    train = parse("train", ["--config", str(shared)])  # push_to_hub is export's, not the trainer's
    assert train.lora.r == 8 and "push_to_hub" not in train.sft
    typo = write(tmp_path, "eval_limt: 5\n")
    with pytest.raises(ConfigError, match="unknown field 'eval_limt'; did you mean 'eval_limit'"):
        parse("infer", ["--config", str(typo)])


def test_bad_flag_value_names_the_command_line():
    with pytest.raises(
        ConfigError, match=r"^the command line: field 'r' must be at least 1, got 0$"
    ):
        parse("train", ["--r", "0"], sft=False)  # the course's own fields: checked before torch
    with pytest.raises(ConfigError, match="cannot be used together with 'instruction'"):
        parse("infer", ["--instruction", "x", "--prompts", "p.jsonl"])


def test_flag_of_the_wrong_type_or_name_is_refused():
    with pytest.raises(
        ConfigError, match=r"^the command line: field 'r': invalid int value: 'abc'$"
    ):
        parse("train", ["--r", "abc"])
    with pytest.raises(ConfigError, match="^the command line: unrecognized argument '--eval-limt'"):
        parse("infer", ["--eval-limt", "3"])
    with pytest.raises(ConfigError, match="unrecognized argument '--max-steps'"):
        parse("infer", ["--max-steps", "3"])  # a training option is not infer's


def test_a_token_is_never_taken_from_a_flag_or_a_file(tmp_path):
    token = "hf_NotARealToken0123456789"
    with pytest.raises(ConfigError, match="field 'hub_token' is not taken") as err:
        parse("train", ["--hub-token", token])
    assert token not in str(err.value)
    path = write(tmp_path, f"hub_token: {token}\n")
    with pytest.raises(ConfigError, match=f"^{path}: field 'hub_token'") as err:
        parse("train", ["--config", str(path)])
    assert token not in str(err.value)


def test_booleans_take_a_value_or_none_and_no_flags():
    s = parse("train", ["--resume", "False", "--use-dora", "--no-progress"], sft=False)
    assert (s.args.resume, s.lora.use_dora, s.args.progress) == (False, True, False)
    assert parse("train", ["--no-resume"], sft=False).args.resume is False


HELP = {  # command: (options it lists, options of others it does not)
    "train": ("--max-steps --lora-alpha --resume --data", "--adapter --formats --eval-limit"),
    "infer": ("--instruction --eval-limit --adapter", "--max-steps --r --formats --merge-check"),
    "merge": ("--merge-check --merged-dir --adapter", "--max-steps --instruction --eval-limit"),
    "baseline": ("--eval-limit --data", "--adapter --max-steps --instruction --formats"),
    "export": ("--formats --push-to-hub --adapter", "--max-steps --eval-data --merge-check"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_lists_its_own_options(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(command, ["--help"])
    assert exit_.value.code == 0
    options = set(re.findall(r"--[a-z][\w-]*", capsys.readouterr().out))
    has, lacks = (set(words.split()) for words in HELP[command])
    assert has <= options and not lacks & options, options


def test_missing_config_file():
    with pytest.raises(ConfigError, match="no-such.yaml: config file not found"):
        parse("infer", ["--config", "no-such.yaml"])
    with pytest.raises(ConfigError, match="--config needs a file path"):
        parse("infer", ["--config"])


def test_saved_config_reads_back_the_same(tmp_path):
    path = write(tmp_path, "model: tiny\nr: 8\n")
    flags = ["--lora-alpha", "8", "--no-progress", "--logging-steps", "5"]
    s = parse("train", ["--config", str(path), *flags])
    resolved = {"max_steps": 200, "learning_rate": 5e-3}
    saved = save_config(s, tmp_path / "out", resolved, notes=["device: cpu"])
    text = saved.read_text()
    assert text.startswith("# The configuration this run used") and "# device: cpu" in text
    again = parse("train", ["--config", str(saved)])
    assert again.values() == {**s.values(), **resolved}
    assert again.sft["logging_steps"] == 5  # an SFTConfig field set by a flag is kept
    assert parse("infer", ["--config", str(saved)]).args.model == "tiny"  # other commands read it


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    values = read_yaml(path)
    assert values, f"{path} is empty"
    sources = {}
    for command in COMMANDS:
        sources |= parse(command, ["--config", str(path)]).sources
    given = [k for k, v in values.items() if v is not None]  # null: the default (or the recipe)
    assert {k: sources.get(k) for k in given} == {k: str(path) for k in given}


@pytest.mark.parametrize(
    "hardware, requested, device, precision, flags",
    [
        (
            Hardware(cuda=True, bf16=True, gpu_name="NVIDIA A100"),
            "auto",
            "cuda",
            "bf16",
            {"bf16": True, "fp16": False},
        ),
        (
            Hardware(cuda=True, bf16=False, gpu_name="Tesla T4"),
            "auto",
            "cuda",
            "fp16",
            {"bf16": False, "fp16": True},
        ),
        (
            Hardware(cuda=True, bf16=True, gpu_name="NVIDIA L4"),
            "fp16",
            "cuda",
            "fp16",
            {"bf16": False, "fp16": True},
        ),
        (
            Hardware(cuda=True, bf16=True, gpu_name="NVIDIA A100"),
            "fp32",
            "cuda",
            "fp32",
            {"bf16": False, "fp16": False},
        ),
        (Hardware(cuda=False, mps=True), "auto", "mps", "fp32", {"bf16": False, "fp16": False}),
        (Hardware(cuda=False), "auto", "cpu", "auto", {}),
    ],
)
def test_device_and_precision_follow_the_hardware(hardware, requested, device, precision, flags):
    placement = resolve_placement(parse("infer", ["--precision", requested]), hardware, env={})
    assert (placement.device, placement.precision) == (device, precision)
    assert placement.trainer_kwargs() == flags and not placement.forced_cpu
    assert "device_map" not in placement.load_kwargs()


@pytest.mark.parametrize(
    "flags, hardware, message",
    [
        (
            ["--precision", "bf16"],
            Hardware(cuda=True, bf16=False, gpu_name="Tesla T4"),
            "field 'precision' is 'bf16' but this GPU (Tesla T4) has no native bfloat16",
        ),
        (
            ["--precision", "fp16"],
            Hardware(cuda=False),
            "field 'precision' is 'fp16' but the device is the CPU",
        ),
        (
            ["--device", "cuda"],
            Hardware(cuda=False),
            "field 'device' is 'cuda' but torch sees no CUDA GPU",
        ),
        (
            ["--device", "mps"],
            Hardware(cuda=False),
            "field 'device' is 'mps' but Apple MPS is not available",
        ),
        (
            ["--device", "cpu"],
            Hardware(cuda=True, gpu_name="H100"),
            "field 'device' is 'cpu' but this process sees a CUDA GPU",
        ),
    ],
)
def test_impossible_hardware_requests_are_clear(flags, hardware, message):
    with pytest.raises(ConfigError, match="^the command line: ") as err:
        resolve_placement(parse("infer", flags), hardware, env={})
    assert message in str(err.value)


def test_under_accelerate_each_process_takes_its_own_gpu():
    env = {"WORLD_SIZE": "2", "LOCAL_RANK": "1", "RANK": "1"}
    h100 = Hardware(cuda=True, bf16=True, gpu_name="H100")
    placement = resolve_placement(parse("train", [], sft=False), h100, env=env)
    assert placement.distributed and placement.local_rank == 1
    assert placement.load_kwargs()["device_map"] == {"": 1}
    assert placement.trainer_kwargs()["ddp_find_unused_parameters"] is False
    assert "process 1 of 2" in placement.describe()
    single = resolve_placement(parse("train", [], sft=False), h100, env={})
    assert not single.distributed and "ddp_find_unused_parameters" not in single.trainer_kwargs()


def test_asking_for_the_cpu_keeps_the_trainer_there():
    s = parse("infer", ["--device", "cpu"])
    placement = resolve_placement(s, Hardware(cuda=False, mps=True), env={})
    assert placement.device == "cpu" and placement.trainer_kwargs() == {"use_cpu": True}
