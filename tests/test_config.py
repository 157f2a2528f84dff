"""tools.config: defaults from the recipe, YAML < flags precedence, clear errors, device and precision choice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from helpers.recipe import Recipe
from helpers.runtime import RuntimeInfo
from tools.config import ConfigError, CourseConfig, load_config, read_yaml, resolve_placement, save_config


def Hardware(cuda: bool, bf16: bool = False, mps: bool = False, gpu_name: str | None = None) -> RuntimeInfo:
    """The runtime facts resolve_placement reads, as helpers.runtime.runtime_info reports them."""
    return RuntimeInfo(device="cuda" if cuda else "mps" if mps else "cpu", bf16=bf16, gpu_name=gpu_name)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_recipe():
    cfg = load_config([])
    recipe = cfg.recipe("unsloth/llama-3-8b-bnb-4bit")
    assert recipe == Recipe.for_model("unsloth/llama-3-8b-bnb-4bit")
    assert cfg.report_to == "tensorboard" and cfg.device == "auto" and cfg.precision == "auto"


def test_tiny_model_gets_the_tiny_recipe(tmp_path):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    (tiny / "course_model.json").write_text("{}")  # the marker helpers.models.is_tiny looks for
    assert load_config([]).recipe(str(tiny)) == Recipe.for_model(str(tiny))
    assert load_config(["--max-steps", "7"]).recipe(str(tiny)).max_steps == 7


def test_precedence_flags_over_yaml_over_defaults(tmp_path):
    path = write(tmp_path, "r: 8\nlora_alpha: 32\nmax_steps: 11\n")
    cfg = load_config(["--config", str(path), "--r", "4"])
    assert (cfg.r, cfg.lora_alpha, cfg.max_steps, cfg.lora_dropout) == (4, 32, 11, Recipe().lora_dropout)
    assert cfg.source("r") == "the command line"
    assert cfg.source("lora_alpha") == str(path)
    assert cfg.source("lora_dropout") == "the defaults"
    assert load_config([f"--config={path}"]).r == 8  # the = form too


def test_yaml_is_read_as_yaml_1_2(tmp_path):
    path = write(tmp_path, "learning_rate: 2e-4\nmerge_check: off\nuse_gradient_checkpointing: false\n"
                           "target_modules: [q_proj, v_proj]\n")
    cfg = load_config(["--config", str(path)])
    assert cfg.learning_rate == pytest.approx(2e-4)  # PyYAML's YAML 1.1 would read 2e-4 as a string
    assert cfg.merge_check == "off"  # and an unquoted off as false
    assert cfg.use_gradient_checkpointing is False
    assert cfg.recipe("m").target_modules == ["q_proj", "v_proj"]


@pytest.mark.parametrize("text, message", [
    ("lora_alpah: 8\n", "unknown field 'lora_alpah'; did you mean 'lora_alpha'?"),
    ("lr: 0.001\n", "unknown field 'lr'; known fields: model, data"),
    ("r: eight\n", "field 'r': expected `int`, got `str`, got 'eight'"),
    ("use_dora: 1\n", "field 'use_dora': expected `bool`, got `int`, got 1"),
    ("use_dora: yes\n", "field 'use_dora': expected `bool`, got `str`, got 'yes'"),
    ("device: gpu\n", "field 'device': invalid enum value 'gpu'"),
    ("target_modules: q_proj\n", "field 'target_modules': expected `array`, got `str`"),
    ("lora_dropout: 1.5\n", "field 'lora_dropout' must be in [0, 1), got 1.5"),
    ("max_steps: 0\n", "field 'max_steps' must be at least 1"),
    ("learning_rate: 3\n", "field 'learning_rate' must be between 0 and 1"),
    ("target_modules: []\n", "field 'target_modules' must be a non-empty list"),
    ("- r\n- 8\n", "expected a mapping of field: value, got list"),
    ("r: [8\n", "not valid YAML"),
])
def test_bad_yaml_names_the_file_and_the_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(["--config", str(path)])
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_bad_flag_value_names_the_command_line():
    with pytest.raises(ConfigError, match=r"^the command line: field 'r' must be at least 1, got 0$"):
        load_config(["--r", "0"])
    with pytest.raises(ConfigError, match="cannot be used together with 'instruction'"):
        load_config(["--instruction", "x", "--prompts", "p.jsonl"])


def test_flag_of_the_wrong_type_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        load_config(["--r", "abc"])
    assert exit_.value.code == 2


def test_missing_config_file():
    with pytest.raises(ConfigError, match="no-such.yaml: config file not found"):
        load_config(["--config", "no-such.yaml"])
    with pytest.raises(ConfigError, match="--config needs a file path"):
        load_config(["--config"])


def test_saved_config_reads_back_the_same(tmp_path):
    path = write(tmp_path, "model: tiny\nr: 8\n")
    cfg = load_config(["--config", str(path), "--lora-alpha", "8", "--no-progress"])
    saved = save_config(cfg, tmp_path / "out", resolved={"max_steps": 200, "learning_rate": 5e-3},
                        notes=["device: cpu"])
    text = saved.read_text()
    assert text.startswith("# The configuration this run used") and "# device: cpu" in text
    again = load_config(["--config", str(saved)])
    expected = dataclasses.replace(cfg, max_steps=200, learning_rate=5e-3)
    assert dataclasses.asdict(again) == dataclasses.asdict(expected)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    values = read_yaml(path)
    assert values, f"{path} is empty"
    cfg = load_config(["--config", str(path)])
    assert all(cfg.source(k) == str(path) for k in values)


@pytest.mark.parametrize("hardware, requested, device, precision, flags", [
    (Hardware(cuda=True, bf16=True, gpu_name="NVIDIA A100"), "auto", "cuda", "bf16", {"bf16": True, "fp16": False}),
    (Hardware(cuda=True, bf16=False, gpu_name="Tesla T4"), "auto", "cuda", "fp16", {"bf16": False, "fp16": True}),
    (Hardware(cuda=True, bf16=True, gpu_name="NVIDIA L4"), "fp16", "cuda", "fp16", {"bf16": False, "fp16": True}),
    (Hardware(cuda=True, bf16=True, gpu_name="NVIDIA A100"), "fp32", "cuda", "fp32", {"bf16": False, "fp16": False}),
    (Hardware(cuda=False, mps=True), "auto", "mps", "fp32", {"bf16": False, "fp16": False}),
    (Hardware(cuda=False), "auto", "cpu", "auto", {}),
])
def test_device_and_precision_follow_the_hardware(hardware, requested, device, precision, flags):
    placement = resolve_placement(load_config(["--precision", requested]), hardware, env={})
    assert (placement.device, placement.precision) == (device, precision)
    assert placement.trainer_kwargs() == flags and not placement.forced_cpu
    assert "device_map" not in placement.load_kwargs()


@pytest.mark.parametrize("flags, hardware, message", [
    (["--precision", "bf16"], Hardware(cuda=True, bf16=False, gpu_name="Tesla T4"),
     "field 'precision' is 'bf16' but this GPU (Tesla T4) has no native bfloat16"),
    (["--precision", "fp16"], Hardware(cuda=False), "field 'precision' is 'fp16' but the device is the CPU"),
    (["--device", "cuda"], Hardware(cuda=False), "field 'device' is 'cuda' but torch sees no CUDA GPU"),
    (["--device", "mps"], Hardware(cuda=False), "field 'device' is 'mps' but Apple MPS is not available"),
])
def test_impossible_hardware_requests_are_clear(flags, hardware, message):
    with pytest.raises(ConfigError, match="^the command line: ") as err:
        resolve_placement(load_config(flags), hardware, env={})
    assert message in str(err.value)


def test_under_accelerate_each_process_takes_its_own_gpu():
    env = {"WORLD_SIZE": "2", "LOCAL_RANK": "1", "RANK": "1"}
    placement = resolve_placement(CourseConfig(), Hardware(cuda=True, bf16=True, gpu_name="H100"), env=env)
    assert placement.distributed and placement.local_rank == 1
    assert placement.load_kwargs()["device_map"] == {"": 1}
    assert placement.trainer_kwargs()["ddp_find_unused_parameters"] is False
    single = resolve_placement(CourseConfig(), Hardware(cuda=True, bf16=True, gpu_name="H100"), env={})
    assert not single.distributed and "ddp_find_unused_parameters" not in single.trainer_kwargs()


def test_asking_for_the_cpu_keeps_the_trainer_there():
    placement = resolve_placement(load_config(["--device", "cpu"]), Hardware(cuda=False, mps=True), env={})
    assert placement.device == "cpu" and placement.trainer_kwargs() == {"use_cpu": True}
