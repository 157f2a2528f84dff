"""MkDocs hook: every course notebook is a page of the site, with the outputs of the current code.

notebooks/ stays the single source: nothing is copied into docs/. ``on_files`` adds each
``notebooks/NN_*.ipynb`` to the site's files under ``notebooks/`` (before mkdocs-jupyter wraps
notebook files, hence the priority), and ``on_config`` makes sure each one is in the "Notebooks"
section of the navigation, in course order, so a new notebook can never be left unreachable.

The page is rendered from the notebook's executed copy, which ``python -m tools.docs_notebooks`` writes
to ``build/site-notebooks/notebooks/`` (``make docs`` runs it first; ``$COURSE_DOCS_NOTEBOOKS`` names another
folder than build/site-notebooks). The build stops with an error when a copy is missing, was executed from a different version of
the notebook (stale outputs) or holds an error output (a traceback). ``COURSE_DOCS_NOTEBOOKS=none``
renders the stripped notebooks instead, without outputs: a quick preview of the prose. The download
button always serves the stripped notebook from the repository.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.notebooks")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PREFIX = "notebooks/"
SECTION = "Notebooks"
EXECUTED_ENV = "COURSE_DOCS_NOTEBOOKS"
EXECUTED = ROOT / "build" / "site-notebooks"  # tools.docs_notebooks' default --out
META = "course_docs"  # what tools.docs_notebooks records in an executed copy's metadata
RUN = "python -m tools.docs_notebooks --out build/site-notebooks (or make docs)"


def course_notebooks() -> list[Path]:
    """The course's notebooks in course order (the same glob as tools.run_course)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _nav_paths(nav) -> set[str]:
    """Every page path named anywhere in a nav structure."""
    found: set[str] = set()
    if isinstance(nav, str):
        found.add(nav)
    elif isinstance(nav, dict):
        for value in nav.values():
            found |= _nav_paths(value)
    elif isinstance(nav, list):
        for item in nav:
            found |= _nav_paths(item)
    return found


def _is_notebook(entry) -> bool:
    path = (
        entry
        if isinstance(entry, str)
        else next(iter(entry.values()))
        if isinstance(entry, dict)
        else ""
    )
    return isinstance(path, str) and path.startswith(PREFIX) and path.endswith(".ipynb")


def _entry_path(entry) -> str:
    return entry if isinstance(entry, str) else next(iter(entry.values()))


def on_config(config):
    """Append notebooks missing from the nav to its Notebooks section; keep that section in course order."""
    nav = config.nav
    if nav is None:  # no nav: MkDocs lists every page itself
        return config
    listed = _nav_paths(nav)
    section = next(
        (item[SECTION] for item in nav if isinstance(item, dict) and SECTION in item), None
    )
    if section is None:
        section = []
        nav.append({SECTION: section})
    for notebook in course_notebooks():
        uri = PREFIX + notebook.name
        if uri not in listed:
            log.info(
                "notebooks hook: %s is not in mkdocs.yml's nav; adding it under '%s'", uri, SECTION
            )
            section.append(uri)
    others = [e for e in section if not _is_notebook(e)]
    notebooks = sorted(
        (e for e in section if _is_notebook(e)), key=lambda e: _entry_path(e).rsplit("/", 1)[-1]
    )
    section[:] = others + notebooks
    return config


def executed_dir() -> Path | None:
    """The folder of executed copies ($COURSE_DOCS_NOTEBOOKS, else build/site-notebooks); None for "none"."""
    value = os.environ.get(EXECUTED_ENV, "").strip()
    if value.lower() == "none":
        return None
    return Path(value).resolve() if value else EXECUTED


def executed_copy(notebook: Path, folder: Path) -> Path:
    """The executed copy of ``notebook`` in ``folder``, checked; PluginError if it must not be published."""
    copy = folder / "notebooks" / notebook.name
    if not copy.exists():
        failed = folder / "failed" / notebook.name
        why = (
            f"it failed to execute (see {failed})"
            if failed.exists()
            else "it has not been executed"
        )
        raise PluginError(
            f"notebooks hook: no executed copy of {notebook.name} in {folder}: {why}. Run {RUN}."
        )
    executed = json.loads(copy.read_text(encoding="utf-8"))
    recorded = executed.get("metadata", {}).get(META, {}).get("source_sha256")
    if recorded != hashlib.sha256(notebook.read_bytes()).hexdigest():
        raise PluginError(
            f"notebooks hook: {copy} was executed from another version of notebooks/{notebook.name} "
            f"(stale outputs). Run {RUN}."
        )
    errors = [
        f"cell {i}: {o.get('ename')}"
        for i, cell in enumerate(executed.get("cells", []))
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    if errors:
        raise PluginError(
            f"notebooks hook: {copy} holds error outputs ({', '.join(errors)}); a page must not "
            f"show a traceback. Fix the notebook and run {RUN}."
        )
    return copy


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files, config):
    """Add each notebooks/NN_*.ipynb as a site file under notebooks/, read from its executed copy."""
    folder = executed_dir()
    if folder is None:
        log.info("notebooks hook: %s=none, so the notebook pages show no outputs", EXECUTED_ENV)
    problems = []
    for notebook in course_notebooks():
        uri = PREFIX + notebook.name
        if files.get_file_from_path(uri) is not None:
            log.warning(
                "notebooks hook: docs/%s duplicates notebooks/%s; delete the copy in docs/",
                uri,
                notebook.name,
            )
            continue
        if folder is None:
            files.append(
                File(
                    uri,
                    src_dir=str(ROOT),
                    dest_dir=config.site_dir,
                    use_directory_urls=config.use_directory_urls,
                )
            )
            continue
        try:
            executed_copy(notebook, folder)
        except PluginError as err:
            problems.append(str(err))
            continue
        files.append(
            File(
                uri,
                src_dir=str(folder),
                dest_dir=config.site_dir,  # folder/notebooks/NN_*.ipynb
                use_directory_urls=config.use_directory_urls,
            )
        )
    if problems:
        raise PluginError("\n".join(problems))
    return files


@event_priority(
    -100
)  # after mkdocs-jupyter's on_post_page, which copies the page's source beside it
def on_post_page(output, page, config):
    """The download copy beside a notebook page is the stripped notebook from the repository."""
    uri = page.file.src_uri
    if (
        uri.startswith(PREFIX)
        and uri.endswith(".ipynb")
        and (NOTEBOOKS / uri[len(PREFIX) :]).exists()
    ):
        target = Path(page.file.abs_dest_path).parent / Path(uri).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NOTEBOOKS / uri[len(PREFIX) :], target)
    return output


def on_page_context(context, page, config, nav):
    """A notebook page with no sections under its title hides the empty table-of-contents column."""
    if page.file.src_uri.startswith(PREFIX) and page.file.src_uri.endswith(".ipynb"):
        sections = sum(len(item.children) for item in page.toc) if page.toc else 0
        if sections == 0:
            meta = dict(page.meta or {})
            meta["hide"] = [*meta.get("hide", []), "toc"]
            page.meta = meta
    return context
