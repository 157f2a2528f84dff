"""The tutorial site: `mkdocs build --strict` passes, and every notebook and concept page is reachable.

The site is built once per run into a temporary folder (never into site/). Reachable means: a link in
the navigation that Material renders on every page, read from the built home page. Needs the docs
tooling: ``pip install -r requirements/docs.txt``.

The notebook pages are rendered from executed copies (docs/hooks/notebooks.py). Executing the whole course
takes minutes, so the build here reads stand-ins: each notebook with one known output added and the digest
that tools.docs_notebooks records. Executing for real, and the outputs' noise: tests/test_docs_notebooks.py.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.slow  # make test-fast leaves these out

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CONCEPTS = [
    "tokens-and-parameters",
    "life-of-an-llm",
    "kinds-of-fine-tuning",
    "peft",
    "lora",
    "qlora",
]
PAGES = [
    "index.md",
    "start-here.md",
    "concepts/index.md",
    "notebooks/index.md",
    "stack.md",
    "commands.md",
    "troubleshooting.md",
    "validation.md",
    "benchmarks.md",
]
NOT_PAGES = (
    "hooks/",
    "overrides/",
    "notes-",
)  # build machinery, and working notes kept off the site


def page_url(md_path: str) -> str:
    """The site path of a docs page with directory URLs: concepts/lora.md -> concepts/lora/."""
    stem = md_path[: -len(Path(md_path).suffix)]
    if stem == "index":
        return ""
    return (stem[: -len("/index")] if stem.endswith("/index") else stem) + "/"


def docs_pages() -> list[str]:
    """Every Markdown page under docs/, as a path relative to docs/."""
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")]
    return sorted(p for p in pages if not p.startswith(NOT_PAGES))


class NavLinks(HTMLParser):
    """Collect, in order, the page links of Material's primary navigation (not #anchors of the TOC)."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        href = attrs.get("href") or ""
        if (
            tag == "a"
            and "md-nav__link" in (attrs.get("class") or "").split()
            and not href.startswith("#")
        ):
            self.links.append("" if href == "." else href)


def build(site_dir: Path, executed: Path | str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "COURSE_DOCS_NOTEBOOKS": str(executed)}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def marker(notebook: Path) -> str:
    return f"stand-in output of {notebook.stem}"


def write_executed(
    folder: Path, notebook: Path, outputs: list[dict] | None = None, digest: str | None = None
) -> Path:
    """A stand-in for tools.docs_notebooks' copy of ``notebook``: its first code cell gets ``outputs``."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    first["outputs"] = (
        outputs
        if outputs is not None
        else [{"output_type": "stream", "name": "stdout", "text": [marker(notebook) + "\n"]}]
    )
    first["execution_count"] = 1
    nb["metadata"]["course_docs"] = {
        "source_sha256": digest or hashlib.sha256(notebook.read_bytes()).hexdigest()
    }
    target = folder / ("" if folder.name == "failed" else "notebooks") / notebook.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if (
        importlib.util.find_spec("mkdocs") is None
        or importlib.util.find_spec("mkdocs_jupyter") is None
    ):
        pytest.fail("the docs tooling is not installed: pip install -r requirements/docs.txt")
    executed = tmp_path_factory.mktemp("executed")
    for notebook in NOTEBOOKS:
        write_executed(executed, notebook)
    site_dir = tmp_path_factory.mktemp("site")
    result = build(site_dir, executed)
    assert result.returncode == 0, (
        f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    )
    return site_dir


@pytest.fixture(scope="module")
def nav(site) -> list[str]:
    parser = NavLinks()
    parser.feed((site / "index.html").read_text(encoding="utf-8"))
    return list(dict.fromkeys(parser.links))  # each page once, in navigation order


def test_strict_build_writes_the_home_page(site):
    assert (site / "index.html").exists()
    assert "Fine-tune LLMs with Unsloth" in (site / "index.html").read_text(encoding="utf-8")


def test_course_has_notebooks_to_document():
    assert len(NOTEBOOKS) >= 6


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_is_a_rendered_page(site, notebook):
    page = site / "notebooks" / notebook.stem / "index.html"
    assert page.exists(), f"{notebook.name} has no page in the built site"
    text = page.read_text(encoding="utf-8")
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    title = "".join(cells[0]["source"]).splitlines()[0].lstrip("# ").strip()
    assert html.escape(title, quote=False) in text or title in text, (
        f"{notebook.name}: title {title!r} not rendered"
    )
    code = next("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    first_word = re.findall(r"[A-Za-z_]{4,}", code)[0]
    assert first_word in text, f"{notebook.name}: its code is not on the page"
    outputs = re.findall(
        r'class="[^"]*\bjp-OutputArea-output\b', text
    )  # an element, not the stylesheet
    assert len(outputs) == 1, (
        f"{notebook.name}: {len(outputs)} output areas, not the executed copy's one"
    )
    assert marker(notebook) in text, (
        f"{notebook.name}: the page is not rendered from its executed copy"
    )
    download = page.parent / notebook.name
    assert download.exists(), f"{notebook.name}: the download copy is missing"
    assert download.read_bytes() == notebook.read_bytes(), (
        f"{notebook.name}: the download is not the repository's file"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_is_in_the_navigation(nav, notebook):
    assert f"notebooks/{notebook.stem}/" in nav


def test_notebooks_are_in_course_order_in_the_navigation(nav):
    listed = [link for link in nav if re.fullmatch(r"notebooks/\d\d_[^/]+/", link)]
    assert listed == [f"notebooks/{p.stem}/" for p in NOTEBOOKS]


@pytest.mark.parametrize("concept", CONCEPTS)
def test_every_concept_page_exists_and_is_in_the_navigation(site, nav, concept):
    assert (DOCS / "concepts" / f"{concept}.md").exists()
    assert f"concepts/{concept}/" in nav
    assert (site / "concepts" / concept / "index.html").exists()


@pytest.mark.parametrize("page", PAGES)
def test_required_pages_are_in_the_navigation(nav, page):
    assert (DOCS / page).exists(), f"docs/{page} is missing"
    assert page_url(page) in nav


def test_every_docs_page_is_in_the_navigation(nav):
    missing = [p for p in docs_pages() if page_url(p) not in nav]
    assert not missing, f"pages not reachable from the navigation: {missing}"


def test_notebooks_are_not_copied_into_docs():
    copies = sorted(p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.ipynb"))
    assert not copies, f"notebooks/ is the single source; remove {copies}"


def test_repository_url_matches_pyproject():
    repo = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    config = (ROOT / "mkdocs.yml").read_text()
    assert re.search(rf"^repo_url:\s*{re.escape(repo)}\s*$", config, re.MULTILINE)


def _pins(path: Path) -> list[tuple[str, str]]:
    pins = []
    for raw in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*==\s*(\S+)", raw.split("#", 1)[0].strip())
        if m:
            pins.append((m.group(1), m.group(2)))
    return pins


@pytest.mark.parametrize(
    "name,version", _pins(ROOT / "requirements-colab.txt"), ids=lambda v: str(v)
)
def test_stack_page_explains_every_colab_pin(name, version):
    stack = (DOCS / "stack.md").read_text()
    assert re.search(rf"^\| `{re.escape(name)}` \| {re.escape(version)} \|", stack, re.MULTILINE), (
        f"docs/stack.md has no row for {name}=={version}"
    )


def test_stack_page_lists_the_whole_cpu_unsloth_and_docs_locks(site):
    built = (site / "stack" / "index.html").read_text(encoding="utf-8")
    for rel in ("requirements/cpu.txt", "requirements/unsloth.txt", "requirements/docs.txt"):
        pins = _pins(ROOT / rel)
        assert pins, f"{rel} has no pins"
        missing = [
            f"{n}=={v}"
            for n, v in pins
            if f"<code>{n}</code></td>\n<td><code>{v}</code>" not in built
        ]
        assert not missing, f"the built stack page lacks these pins of {rel}: {missing}"


def _load_hook():
    spec = importlib.util.spec_from_file_location("notebooks_hook", DOCS / "hooks" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_adds_missing_notebooks_to_the_navigation_in_order():
    pytest.importorskip("mkdocs")
    hook = _load_hook()
    nav = [
        {"Home": "index.md"},
        {"Notebooks": ["notebooks/index.md", f"notebooks/{NOTEBOOKS[-1].name}"]},
    ]
    hook.on_config(SimpleNamespace(nav=nav))
    assert nav[1]["Notebooks"] == [
        "notebooks/index.md",
        *[f"notebooks/{p.name}" for p in NOTEBOOKS],
    ]
    bare = [{"Home": "index.md"}]
    hook.on_config(SimpleNamespace(nav=bare))
    assert bare[-1] == {"Notebooks": [f"notebooks/{p.name}" for p in NOTEBOOKS]}


def test_hook_refuses_a_copy_that_is_missing_failed_stale_or_shows_a_traceback(tmp_path):
    pytest.importorskip("mkdocs")
    from mkdocs.exceptions import PluginError

    hook, notebook = _load_hook(), NOTEBOOKS[0]
    with pytest.raises(PluginError, match="has not been executed"):
        hook.executed_copy(notebook, tmp_path)
    write_executed(tmp_path / "failed", notebook)
    with pytest.raises(PluginError, match="failed to execute"):
        hook.executed_copy(notebook, tmp_path)
    write_executed(tmp_path, notebook, digest="0" * 64)
    with pytest.raises(PluginError, match="stale outputs"):
        hook.executed_copy(notebook, tmp_path)
    error = {
        "output_type": "error",
        "ename": "RuntimeError",
        "evalue": "boom",
        "traceback": ["RuntimeError: boom"],
    }
    write_executed(tmp_path, notebook, outputs=[error])
    with pytest.raises(PluginError, match="traceback"):
        hook.executed_copy(notebook, tmp_path)
    write_executed(tmp_path, notebook)
    assert hook.executed_copy(notebook, tmp_path) == tmp_path / "notebooks" / notebook.name


def test_hook_reads_the_folder_from_the_environment(monkeypatch, tmp_path):
    pytest.importorskip("mkdocs")
    hook = _load_hook()
    monkeypatch.delenv("COURSE_DOCS_NOTEBOOKS", raising=False)
    assert hook.executed_dir() == ROOT / "build" / "site-notebooks"
    monkeypatch.setenv("COURSE_DOCS_NOTEBOOKS", str(tmp_path))
    assert hook.executed_dir() == tmp_path.resolve()
    monkeypatch.setenv("COURSE_DOCS_NOTEBOOKS", "none")
    assert hook.executed_dir() is None


def test_strict_build_fails_without_the_executed_notebooks(tmp_path):
    result = build(tmp_path / "site", tmp_path / "never-executed")
    log = result.stdout + result.stderr
    assert result.returncode != 0
    missing = [p.name for p in NOTEBOOKS if f"no executed copy of {p.name}" not in log]
    assert not missing, f"the build did not name these missing copies: {missing}\n{log}"
    assert not (tmp_path / "site" / "notebooks").exists()


def test_screenshots_of_the_home_page_and_a_notebook_page(site, tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "screenshot_docs.py"),
            "--site",
            str(site),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "home.png").stat().st_size > 0
    assert (tmp_path / "notebook.png").stat().st_size > 0


def test_the_rewards_page_states_trls_grpo_defaults():
    """docs/concepts/rewards-and-preferences.md's table of GRPOConfig defaults, read from the installed TRL."""
    import dataclasses
    import re

    from trl import GRPOConfig

    page = (ROOT / "docs" / "concepts" / "rewards-and-preferences.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| `?([^`|]+?)`? \|", page, flags=re.M))
    defaults = {f.name: f.default for f in dataclasses.fields(GRPOConfig)}
    assert set(table) == {
        "num_generations",
        "beta",
        "epsilon",
        "scale_rewards",
        "loss_type",
        "learning_rate",
    }
    for name, stated in table.items():
        assert str(defaults[name]) == stated.strip('"'), (name, stated, defaults[name])
