"""The `course` command end to end on the CPU with the tiny model: train, infer, merge, baseline.

Each command runs in its own process (`python -m tools.cli`, what the `course` entry point calls),
so Unsloth's patches never leak into the other tests. Training is kept to 2 steps of 1 example.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY_TRAIN = ["--config", "configs/tiny.yaml", "--model", "tiny", "--max-steps", "2", "--save-steps", "1",
              "--per-device-train-batch-size", "1", "--gradient-accumulation-steps", "1",
              "--max-seq-length", "256", "--device", "cpu", "--no-progress"]


def course(*args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `course ARGS` (as python -m tools.cli) from the repository root, on the CPU, offline."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT)}
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run([sys.executable, "-m", "tools.cli", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"course {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
                    f"\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("course-run")
    return out, course("train", *TINY_TRAIN, "--output-dir", str(out))


def test_entry_point_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["course"] == "tools.cli:main"
    from tools.cli import COMMANDS

    assert set(COMMANDS) == {"train", "infer", "merge", "baseline", "export"}


def test_help_lists_commands_and_fields():
    top = course("--help")
    assert all(c in top.stdout for c in ("train", "infer", "merge", "baseline"))
    train = course("train", "--help")
    assert "--max-steps" in train.stdout and "--use-dora" in train.stdout and "--config" not in train.stderr


def test_bad_config_fails_fast_with_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tiny\nlora_dropout: 2\n")
    proc = course("train", "--config", str(bad), check=False)
    assert proc.returncode == 2
    assert f"course train: error: {bad}: field 'lora_dropout' must be in [0, 1), got 2.0" in proc.stderr
    unknown = course("fly", check=False)
    assert unknown.returncode == 2 and "unknown command 'fly'" in unknown.stderr


def test_train_writes_adapter_config_metrics_and_logs(trained):
    out, proc = trained
    adapter = out / "lora_adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    saved = (out / "course_config.yaml").read_text()
    assert "max_steps: 2\n" in saved and "learning_rate: 0.005\n" in saved  # the tiny recipe's rate, resolved
    assert "# device: cpu" in saved
    metrics = json.loads((out / "train_metrics.json").read_text())
    assert metrics["global_step"] == 2 and metrics["tokens"] > 0 and metrics["tokens_per_s"] > 0
    assert "tokens/s" in proc.stdout
    import importlib.util

    if importlib.util.find_spec("tensorboard"):
        assert list((out / "tensorboard").rglob("events.out.tfevents.*")), "no TensorBoard event file"
    else:
        assert "TensorBoard is not installed" in proc.stdout


def test_infer_one_prompt(trained):
    out, _ = trained
    proc = course("infer", "--output-dir", str(out), "--instruction", "Is the number even or odd?",
                  "--input", "67693", "--max-new-tokens", "8", "--no-progress")
    assert proc.returncode == 0


def test_infer_prompts_file(trained, tmp_path):
    out, _ = trained
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"instruction": "Is the number even or odd?", "input": "12"}\n'
                       '{"instruction": "Which number is larger, the first or the second?", "input": "3, 9"}\n')
    course("infer", "--output-dir", str(out), "--prompts", str(prompts), "--max-new-tokens", "8", "--no-progress")
    rows = [json.loads(line) for line in (out / "infer" / "answers.jsonl").read_text().splitlines()]
    assert [r["input"] for r in rows] == ["12", "3, 9"] and all("answer" in r for r in rows)


def test_infer_eval_scores_with_the_notebook_helpers(trained):
    out, proc = trained
    proc = course("infer", "--output-dir", str(out), "--eval", "--eval-limit", "4", "--max-new-tokens", "8",
                  "--no-progress")
    report = json.loads((out / "infer" / "report.json").read_text())
    assert report["overall"]["n"] == 4 and 0.0 <= report["overall"]["exact_match"] <= 1.0
    assert "exact_match" in proc.stdout and (out / "infer" / "course_config.yaml").is_file()


def test_infer_without_adapter_says_how_to_get_one(tmp_path):
    proc = course("infer", "--model", "tiny", "--output-dir", str(tmp_path), "--instruction", "x", check=False)
    assert proc.returncode == 2 and "no adapter at" in proc.stderr and "course train" in proc.stderr


def test_baseline_scores_the_base_model(trained):
    out, _ = trained
    proc = course("baseline", "--model", "tiny", "--output-dir", str(out), "--eval-limit", "4",
                  "--max-new-tokens", "8", "--no-progress")
    report = json.loads((out / "baseline" / "report.json").read_text())
    assert report["overall"]["n"] == 4 and set(report["families"]) <= {
        json.loads(line)["family"] for line in (ROOT / "data" / "eval.jsonl").read_text().splitlines()}
    floor = json.loads((out / "baseline" / "commonest_answer.json").read_text())
    assert floor["overall"]["n"] == 4 and "commonest answer" in proc.stdout
    answers = (out / "baseline" / "answers.jsonl").read_text().splitlines()
    assert len(answers) == 4 and "model: tiny" in (out / "baseline" / "course_config.yaml").read_text()


def test_merge_writes_16bit_model_that_matches_the_adapter(trained):
    out, _ = trained
    proc = course("merge", "--output-dir", str(out), "--merge-check-prompts", "2", "--max-new-tokens", "8")
    merged = out / "merged_16bit"
    assert (merged / "config.json").is_file() and list(merged.glob("*.safetensors"))
    results = json.loads((merged / "merge_check.json").read_text())
    assert len(results) == 2 and all(r["verdict"] in ("identical", "near-tie") for r in results)
    assert "matches the adapter" in proc.stdout


def test_merge_check_tells_a_tie_from_a_different_model():
    """compare_greedy on a fake model whose logits are fixed: a flipped near-tie passes, a clear miss fails."""
    torch = pytest.importorskip("torch")
    from tools.cli import compare_greedy

    class Fake:
        device = "cpu"

        def __init__(self, table, picks):
            self.table, self.picks = table, picks  # logits per new position; tokens generate() returns

        def generate(self, input_ids, **_):
            return torch.cat([input_ids, torch.tensor([self.picks])], dim=1)

        def __call__(self, input_ids):
            n = input_ids.shape[1] - len(self.picks)
            logits = torch.zeros(1, input_ids.shape[1], 4)
            logits[0, n - 1:-1] = torch.tensor(self.table)
            return type("Out", (), {"logits": logits})()

    class Batch(dict):
        def to(self, device):
            return self

    class Tok:
        pad_token_id = eos_token_id = 0

        def __call__(self, texts, return_tensors=None):
            ids = [[1, 2]]
            return Batch(input_ids=torch.tensor(ids)) if return_tensors else {"input_ids": ids}

    adapter_tokens = [1, 2, 2, 0]  # the prompt [1, 2], then the adapter chose 2, then 0
    near = Fake([[0.0, 0.0, 1.0, 1.01], [2.0, 0.0, 0.0, 0.0]], picks=[3, 0])  # 3 beats 2 by a hair
    tie = compare_greedy(near, Tok(), "p", adapter_tokens, 2, tolerance=0.1)
    assert tie["verdict"] == "near-tie" and tie["first_difference"] == 0
    far = Fake([[0.0, 0.0, 1.0, 5.0], [2.0, 0.0, 0.0, 0.0]], picks=[3, 0])  # 3 beats 2 by far
    assert compare_greedy(far, Tok(), "p", adapter_tokens, 2, tolerance=0.1)["verdict"] == "mismatch"
    same = Fake([[0.0, 0.0, 5.0, 0.0], [2.0, 0.0, 0.0, 0.0]], picks=[2, 0])
    assert compare_greedy(same, Tok(), "p", adapter_tokens, 2, tolerance=0.1)["verdict"] == "identical"


@pytest.mark.parametrize("content, expected", [
    ('{"instruction": "Even or odd?", "input": "7"}\n{"instruction": "x",\n', "line 2: invalid JSON"),
    ('{"instruction": "a", "instruction": "b"}\n', "line 1: "),
    ('\n["not", "an", "object"]\n', "line 2: expected an object with a non-empty string 'instruction'"),
    ('{"instruction": "Even or odd?", "input": 7}\n', "line 1: field 'input' must be a string"),
    ("\n\n", "no prompts"),
])
def test_prompts_file_errors_name_the_line(tmp_path, content, expected):
    from tools.cli import read_prompts
    from helpers.data import DataError

    path = tmp_path / "prompts.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=expected):
        read_prompts(path)


def test_prompts_file_keeps_extra_keys_and_fills_input(tmp_path):
    from tools.cli import read_prompts

    path = tmp_path / "prompts.jsonl"
    path.write_text('\ufeff{"instruction": "Even or odd?", "id": 3}\n', encoding="utf-8")
    assert read_prompts(path) == [{"instruction": "Even or odd?", "id": 3, "input": ""}]
    with pytest.raises(Exception, match="file not found"):
        read_prompts(tmp_path / "missing.jsonl")
