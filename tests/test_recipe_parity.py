"""One source for every number: the hyperparameters the notebooks write as literals, the recipe that
helpers.train and the `course` command train with, the shipped configs, and the docs tables must agree.

The notebooks' calls are read with `ast` (never executed): the keyword arguments of
`FastLanguageModel.from_pretrained`, `get_peft_model` and `SFTConfig`, and the `max_steps` /
`learning_rate` assignments of notebooks 04 and 07 (the 8B values, the tiny model's under `if is_tiny(...)` and
SmolLM2's under `elif family(...) == "smollm2"`).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from helpers.recipe import SMOLLM2, SMOLLM2_CHAT, TINY, Recipe

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RECIPE = Recipe()
# notebook keyword -> recipe field, where the names differ
RENAMED = {"random_state": "seed", "max_length": "max_seq_length"}


def code_of(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Every call of a function or method called ``name``."""
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and (getattr(n.func, "attr", None) == name or getattr(n.func, "id", None) == name)
    ]


def literal_kwargs(call: ast.Call) -> dict:
    """The keyword arguments whose values are literals (names and expressions are left out)."""
    out = {}
    for kw in call.keywords:
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            continue
    return out


def assignments(tree: ast.AST, name: str) -> list[tuple[object, str]]:
    """(value, branch) for each `name = literal` in the code: branch is "tiny" under `if is_tiny(...)`,
    "smollm2" under a test that names "smollm2", else "default"."""
    found = []

    def visit(node: ast.AST, branch: str) -> None:
        if isinstance(node, ast.If):
            test = ast.unparse(node.test)
            inner = "tiny" if "is_tiny" in test else "smollm2" if "smollm2" in test else branch
            for child in node.body:
                visit(child, inner)
            for child in node.orelse:
                visit(child, branch)
            return
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == name for t in node.targets
        ):
            if not (isinstance(node.value, ast.Name) and node.value.id == "MAX_STEPS"):
                found.append(
                    (ast.literal_eval(node.value), branch)
                )  # the MAX_STEPS override: below
        for child in ast.iter_child_nodes(node):
            visit(child, branch)

    visit(tree, "default")
    return found


def check_against_recipe(kwargs: dict, where: str) -> list[str]:
    """The keyword arguments whose value differs from the recipe field of the same (or mapped) name."""
    problems = []
    for key, value in kwargs.items():
        field = RENAMED.get(key, key)
        if hasattr(RECIPE, field) and value is not Ellipsis:
            expected = getattr(RECIPE, field)
            if isinstance(value, list) and Ellipsis in value:
                continue
            if value != expected and not (
                field == "lora_dropout" and value == 0 and expected == 0.0
            ):
                problems.append(f"{where}: {key}={value!r}, the recipe has {expected!r}")
    return problems


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_notebook_literals_match_the_recipe(path):
    tree = ast.parse(code_of(path))
    problems = []
    for name in ("get_peft_model", "SFTConfig"):
        for call in calls(tree, name):
            problems += check_against_recipe(literal_kwargs(call), f"{path.name} {name}")
    for call in calls(tree, "from_pretrained"):
        kwargs = literal_kwargs(call)
        if "max_seq_length" in kwargs:
            problems += check_against_recipe(
                {"max_seq_length": kwargs["max_seq_length"]}, f"{path.name} from_pretrained"
            )
        if "load_in_4bit" in kwargs:
            assert kwargs["load_in_4bit"] is True, f"{path.name}: the course loads in 4-bit"
    assert not problems, "\n".join(problems)


def test_notebook_04_writes_the_whole_recipe():
    tree = ast.parse(code_of(ROOT / "notebooks" / "04_sft_training.ipynb"))
    peft = calls(tree, "get_peft_model")[
        0
    ]  # the lesson's; exercise 4 writes a second one for its fresh adapter
    (config,) = calls(tree, "SFTConfig")
    lora = literal_kwargs(peft)
    sft = literal_kwargs(config)
    assert {"r", "target_modules", "lora_alpha", "lora_dropout", "random_state"} <= set(lora)
    # checkpointing depends on the device: the recipe's on a GPU, off on a CPU (the memory is the same RAM)
    (checkpointing,) = [kw.value for kw in peft.keywords if kw.arg == "use_gradient_checkpointing"]
    assert (
        ast.unparse(checkpointing)
        == f"{RECIPE.use_gradient_checkpointing!r} if torch.cuda.is_available() else False"
    )
    (trl_checkpointing,) = [
        kw.value for kw in config.keywords if kw.arg == "gradient_checkpointing"
    ]
    assert ast.unparse(trl_checkpointing) == "torch.cuda.is_available()"
    assert {
        "max_length",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "warmup_steps",
        "optim",
        "weight_decay",
        "lr_scheduler_type",
        "seed",
        "save_steps",
        "packing",
        "padding_free",
    } <= set(sft)
    assert_branches(tree)


def assert_branches(tree: ast.AST, smollm2: dict = SMOLLM2) -> None:
    """max_steps and learning_rate: the recipe's, the tiny model's and SmolLM2's, each in its branch."""
    steps, rates = set(assignments(tree, "max_steps")), set(assignments(tree, "learning_rate"))
    assert steps == {
        (RECIPE.max_steps, "default"),
        (TINY["max_steps"], "tiny"),
        (smollm2["max_steps"], "smollm2"),
    }, steps
    assert rates == {
        (RECIPE.learning_rate, "default"),
        (TINY["learning_rate"], "tiny"),
        (smollm2["learning_rate"], "smollm2"),
    }, rates


def test_notebook_07_trains_with_the_same_steps_and_rates():
    """As notebook 04, but SmolLM2's steps are helpers.recipe.SMOLLM2_CHAT's (the Instruct model already writes ChatML)."""
    assert_branches(
        ast.parse(code_of(ROOT / "notebooks" / "07_chat_templates.ipynb")), SMOLLM2_CHAT
    )


def test_a_drifted_branch_is_caught():
    tree = ast.parse(
        "max_steps = 60\nlearning_rate = 2e-4\nif is_tiny(m):\n    max_steps = 100\n    learning_rate = 5e-3\n"
        "elif family(m) == 'smollm2':\n    max_steps = 40\n    learning_rate = 2e-3\n"
    )
    with pytest.raises(AssertionError):
        assert_branches(tree)


def test_the_command_line_trains_with_the_notebook_values(tmp_path):
    """helpers.train.sft_config (what `course train` and the catch-up cells use) gives notebook 04's SFTConfig."""
    import unsloth  # noqa: F401  (Unsloth patches TRL's SFTConfig, as in the notebook)

    from helpers.train import sft_config

    tree = ast.parse(code_of(ROOT / "notebooks" / "04_sft_training.ipynb"))
    notebook = literal_kwargs(calls(tree, "SFTConfig")[0])
    from trl import SFTConfig

    built = sft_config(RECIPE, tmp_path)
    written = SFTConfig(
        output_dir=str(tmp_path), **notebook
    )  # as the notebook builds it (Unsloth may adapt both)
    for key in notebook:
        assert getattr(built, key) == getattr(written, key), (
            f"SFTConfig {key}: notebook {getattr(written, key)!r}, helpers.train {getattr(built, key)!r}"
        )
    assert (built.max_steps, built.learning_rate) == (RECIPE.max_steps, RECIPE.learning_rate)


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_say_the_recipe(path):
    from tools.cli import read_yaml

    values = read_yaml(path)
    recipe = Recipe(**TINY) if values.get("model") == "tiny" else Recipe()
    for key, value in values.items():
        if hasattr(recipe, key) and value is not None and key != "report_to":
            assert value == getattr(recipe, key), (
                f"{path.name}: {key}={value!r}, the recipe has {getattr(recipe, key)!r}"
            )


def test_docs_tables_say_the_recipe():
    """The notebook-to-command table in docs/commands.md shows the calls with their arguments."""
    text = (ROOT / "docs" / "commands.md").read_text()
    spans = re.findall(
        r"`((?:get_peft_model|SFTConfig|FastLanguageModel\.from_pretrained)\(.*?\))`", text
    )
    assert len(spans) >= 2, "the table should show get_peft_model(...) and SFTConfig(...)"
    problems = []
    for span in spans:
        call = ast.parse(span.replace("[...]", "...")).body[0].value
        problems += check_against_recipe(literal_kwargs(call), f"docs/commands.md {span[:30]}")
    assert not problems, "\n".join(problems)


def test_a_drifted_value_is_caught():
    """The check itself can fail: a notebook value that differs from the recipe is reported."""
    call = ast.parse("get_peft_model(model, r=8, lora_alpha=16, random_state=1)").body[0].value
    assert check_against_recipe(literal_kwargs(call), "x") == [
        "x: r=8, the recipe has 16",
        "x: random_state=1, the recipe has 3407",
    ]


@pytest.mark.parametrize("name", ["04_sft_training.ipynb", "07_chat_templates.ipynb"])
def test_max_steps_parameter_shortens_training_after_the_recipe(name):
    """A positive MAX_STEPS (the parameters cell, $COURSE_MAX_STEPS) replaces the recipe's step count, and
    only after every branch set it, so a test run and a lesson run the same code."""
    tree = ast.parse(code_of(ROOT / "notebooks" / name))
    module = tree.body
    last_recipe = max(
        i for i, node in enumerate(module) for n in ast.walk(node)
        if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "max_steps" for t in n.targets)
        and isinstance(n.value, ast.Constant)
    )  # fmt: skip
    override = [
        i for i, node in enumerate(module)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "MAX_STEPS"
        and ast.unparse(node.body[0]) == "max_steps = MAX_STEPS"
    ]  # fmt: skip
    assert override and override[0] > last_recipe
    params = json.loads((ROOT / "notebooks" / name).read_text())["metadata"]["course"]["parameters"]
    assert "MAX_STEPS" in params
