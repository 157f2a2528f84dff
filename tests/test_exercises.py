"""Exercise cells do not give their answer away.

An exercise's check cell (a code cell holding ``your_answer = None``) computes the truth from what the library, the
model, the files or the data do, and compares the learner's answer with it. Reading the cell must not tell the
answer: it must not compare the truth with a literal (``assert truth == (False, True)``, ``assert len(out) == 48``),
pass a literal to ``check_answer`` (``check_answer(your_answer, (16 / 16, 16 / 64))``), or compute the truth from
literals alone (``q8_0_bits = (32 * 8 + 16) / 32``). A worked solution goes in a collapsed
``<details><summary>Solution</summary>`` markdown cell after the check cell, and a cross-check that needs the answer's
value goes in a code cell after that. The check is static: it parses the cells, it runs nothing.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MARKER = "your_answer = None"
ANSWER = "your_answer"
SOLUTION = "<summary>Solution</summary>"


def exercise_cells(path: Path) -> list[tuple[int, str]]:
    """(index, source) of each exercise check cell of a notebook."""
    cells = json.loads(path.read_text())["cells"]
    return [
        (i, "".join(c["source"]))
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and MARKER in "".join(c["source"])
    ]


def parse(source: str) -> ast.Module:
    """The cell as Python; IPython's ``%magic`` and ``!shell`` lines become ``pass``."""
    lines = [re.sub(r"^(\s*)[%!].*", r"\1pass", line) for line in source.split("\n")]
    return ast.parse("\n".join(lines))


def literal(node: ast.AST) -> bool:
    """An expression that spells out a value: constants (None aside), containers and arithmetic of them, f-strings,
    and a call whose arguments are all such (``standard_error(0.5, 30)``, ``round(16 / 64, 2)``)."""
    if isinstance(node, ast.Constant):
        return node.value is not None and node.value is not Ellipsis
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and literal(k) for k in node.keys) and all(
            literal(v) for v in node.values
        )
    if isinstance(node, ast.UnaryOp):
        return literal(node.operand)
    if isinstance(node, ast.BinOp):
        return literal(node.left) and literal(node.right)
    if isinstance(
        node, ast.JoinedStr
    ):  # an f-string is the answer's text with a few blanks filled in
        return any(isinstance(v, ast.Constant) and v.value.strip() for v in node.values)
    if isinstance(node, ast.Call):
        args = [*node.args, *(k.value for k in node.keywords)]
        return bool(args) and all(literal(a) for a in args)
    return False


def has_text(node: ast.AST) -> bool:
    """Spells out text: holds an f-string, or glues a string constant onto something (``prefix + "### Input:"``)."""
    return any(
        isinstance(n, ast.JoinedStr)
        or (
            isinstance(n, ast.BinOp)
            and isinstance(n.op, ast.Add)
            and any(
                isinstance(o, ast.Constant) and isinstance(o.value, str) for o in (n.left, n.right)
            )
        )
        for n in ast.walk(node)
    )


def names(node: ast.AST) -> set[str]:
    """Variables an expression reads: not the functions it calls, nor the builtins."""
    called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in called} - set(
        dir(builtins)
    )


def is_check_answer(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "check_answer"
    )


def truth_names(tree: ast.Module) -> set[str]:
    """The variables holding the truth: ``truth``, what ``check_answer`` gets as the truth, and what an inline check
    compares ``your_answer`` with."""
    found = {"truth"}
    for node in ast.walk(tree):
        if is_check_answer(node) and len(node.args) >= 2:
            found |= names(node.args[1])
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(ANSWER in names(s) for s in sides):
                found |= set().union(*(names(s) for s in sides if ANSWER not in names(s)))
        elif isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Sub
        ):  # abs(your_answer - truth) <= tolerance
            pair = (node.left, node.right)
            found |= set().union(*(names(b) for a, b in (pair, pair[::-1]) if ANSWER in names(a)))
    return found - {ANSWER}


def give_aways(source: str) -> list[str]:
    """What in an exercise cell states its answer; empty when nothing does."""
    tree = parse(source)
    truths = truth_names(tree)
    found = []

    def line(node: ast.AST) -> str:
        return f"line {node.lineno}: {ast.get_source_segment(source, node) or ast.unparse(node)}"

    for node in ast.walk(tree):
        if is_check_answer(node) and len(node.args) >= 2 and literal(node.args[1]):
            found.append(f"check_answer against a literal, {line(node)}")
        elif (
            isinstance(node, (ast.Assign, ast.AnnAssign))
            and node.value is not None
            and literal(node.value)
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if set().union(*(names(t) for t in targets)) & truths:
                found.append(f"the truth computed from literals alone, {line(node)}")
        elif isinstance(node, ast.Assert):
            found += [
                f"asserts the truth equals a literal, {line(node)}"
                for _ in literal_comparisons(node.test, truths)
            ]
    return found


def literal_comparisons(test: ast.AST, truths: set[str]) -> list[ast.AST]:
    """Comparisons inside an assert's test that pin a truth variable to a literal: ``==``, ``is``, ``in`` against a
    literal (or against an expression that spells out text), ``abs(truth - literal) < tol``,
    ``math.isclose(truth, 9.1)``."""
    hits = []
    for node in ast.walk(test):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for op, a, b in zip(node.ops, sides, sides[1:]):
                if not isinstance(op, (ast.Eq, ast.Is, ast.In)):
                    continue
                for mine, other in ((a, b), (b, a)):
                    if names(mine) & truths and (
                        literal(other) or (not names(other) & truths and has_text(other))
                    ):
                        hits.append(node)
        elif isinstance(node, ast.Call):
            func = (
                node.func.attr
                if isinstance(node.func, ast.Attribute)
                else getattr(node.func, "id", "")
            )
            first = node.args[0] if node.args else None
            if func == "abs" and isinstance(first, ast.BinOp) and isinstance(first.op, ast.Sub):
                pair = (first.left, first.right)
            elif func in ("isclose", "approx", "allclose") and len(node.args) >= 2:
                pair = (node.args[0], node.args[1])
            else:
                continue
            if any(names(mine) & truths and literal(other) for mine, other in (pair, pair[::-1])):
                hits.append(node)
    return hits


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercise_cells_do_not_state_their_answer(path):
    cells = exercise_cells(path)
    assert cells, f"{path.name} has no exercise cells"
    problems = [f"cell {i}: {problem}" for i, source in cells for problem in give_aways(source)]
    assert problems == [], (
        f"{path.name}: exercise cells that give their answer away:\n" + "\n".join(problems)
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_are_collapsed_and_come_after_their_check_cell(path):
    """A solution is hidden until clicked, and it sits after the cell the learner fills in, never before it."""
    cells = json.loads(path.read_text())["cells"]
    for i, cell in enumerate(cells):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and SOLUTION in text:
            assert (
                text.startswith("<details><summary>Solution</summary>") and "</details>" in text
            ), f"{path.name} cell {i}: a solution is a collapsed <details> block"
            before = cells[i - 1]
            assert before["cell_type"] == "code" and MARKER in "".join(before["source"]), (
                f"{path.name} cell {i}: a solution comes right after its exercise's check cell"
            )


BAD = {  # the cells the issue named, as they were
    "00 ex 1": 'your_answer = None\ntruth = {cc: f(cc) for cc in ("7.5", "8.0")}\ncheck_answer(your_answer, truth)\n'
    'assert truth["7.5"] == "float16"',
    "00 ex 2": "your_answer = None\ntruth = (a < t, b < t)\ncheck_answer(your_answer, truth)\n"
    "assert truth == (False, True)",
    "00 ex 3": "your_answer = None\ntruth = fix_command([row])\ncheck_answer(your_answer, truth)\n"
    'assert truth == f"pip install --no-deps transformers=={pinned.pinned}"',
    "02 ex 1": "your_answer = None\ntruth = (lora(c, r=8), lora(c, r=64))\ncheck_answer(your_answer, truth)\n"
    "assert truth == (41_943_040 // 2, 41_943_040 * 4)",
    "02 ex 3": "your_answer = None\ncheck_answer(your_answer, (16 / 16, 16 / 64))",
    "05 ex 1": "your_answer = None\nout = generate(max_new_tokens=48)\ncheck_answer(your_answer, len(out))\n"
    "assert len(out) == 48 and not set(out.tolist()) & set(eos)",
    "06 ex 2": "your_answer = None\ncheck_answer(your_answer, round(100 * standard_error(0.5, 30), 1), tolerance=0.05)",
    "08 ex 1": "your_answer = None\nq8_0_bits = (32 * 8 + 16) / 32\ncheck_answer(your_answer, q8_0_bits)",
    "01 ex 2": "your_answer = None\nplain = weights(double_quant=False)\ncheck_answer(your_answer[0], plain.bits)\n"
    "assert round(plain.bits, 2) == 4.5 > other.bits",
    "03 ex 1": "your_answer = None\nn = sum(t.endswith(eos) for t in texts)\ncheck_answer(your_answer, n)\n"
    "assert n == 0",
    "08 ex 2": 'your_answer = None\ntrained = prompt_for(i, "")\nif your_answer is not None:\n'
    '    print(render(t, your_answer) == trained)\nassert render(t, f"{i}\\n\\n### Input:\\n") == trained',
    "tolerance": "your_answer = None\nse = f(30)\ncheck_answer(your_answer, se)\nassert abs(se - 0.0913) < 1e-4",
    "isclose": "your_answer = None\nse = f(30)\ncheck_answer(your_answer, se)\nassert math.isclose(se, 0.0913)",
}

GOOD = {  # what the fixed cells do instead, and the notebooks' other legitimate assertions
    "relation": "your_answer = None\nint8 = params * size / GIB\ncheck_answer(your_answer, int8, tolerance=0.01)\n"
    "assert low / GIB < int8 < high / GIB",
    "two computations": "your_answer = None\ntruth = (lora(c, r=8), lora(c, r=64))\ncheck_answer(your_answer, truth)\n"
    "assert lora(model.config, r=16) == trainable",
    "the question's givens": "your_answer = None\nhead = rows['lm_head']\nsaved = head.b - nf4(head.params)\n"
    "check_answer(your_answer, saved, tolerance=0.01)\n"
    "assert head.shape == (128256, 4096) and 0 < saved",
    "measured truth": "your_answer = None\nbits = sizes[Q8_0][1] * 8 / sizes[Q8_0][0]\n"
    "check_answer(your_answer, bits)\n"
    'assert files["q8_0"] >= bits',
    "report keys": "your_answer = None\nright = sum(x)\ncheck_answer(your_answer, right)\n"
    'assert right / len(pairs) == report.by_family()[family]["exact_match"]',
    "not equal": "your_answer = None\ncheck_answer(your_answer, len(out))\nassert typed != trained and len(out) > 2",
    "inline check": "your_answer = None\nmeasured = penalised[0, t].item()\nif your_answer is not None:\n"
    '    print("right" if abs(your_answer - measured) <= 1e-3 else "no")\n'
    "assert measured != raw or raw == 0",
}


@pytest.mark.parametrize("name", BAD)
def test_the_check_catches_an_answer_in_the_cell(name):
    assert give_aways(BAD[name]), f"{name}: not caught"


@pytest.mark.parametrize("name", GOOD)
def test_the_check_leaves_legitimate_assertions_alone(name):
    assert give_aways(GOOD[name]) == []
