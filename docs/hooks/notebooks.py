"""MkDocs hook: every course notebook is a page of the site, read in place from notebooks/.

notebooks/ stays the single source: nothing is copied into docs/. ``on_files`` adds each
``notebooks/NN_*.ipynb`` to the site's files under ``notebooks/`` (before mkdocs-jupyter wraps
notebook files, hence the priority), and ``on_config`` makes sure each one is in the "Notebooks"
section of the navigation, in course order, so a new notebook can never be left unreachable.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.notebooks")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PREFIX = "notebooks/"
SECTION = "Notebooks"


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
    path = entry if isinstance(entry, str) else next(iter(entry.values())) if isinstance(entry, dict) else ""
    return isinstance(path, str) and path.startswith(PREFIX) and path.endswith(".ipynb")


def _entry_path(entry) -> str:
    return entry if isinstance(entry, str) else next(iter(entry.values()))


def on_config(config):
    """Append notebooks missing from the nav to its Notebooks section; keep that section in course order."""
    nav = config.nav
    if nav is None:  # no nav: MkDocs lists every page itself
        return config
    listed = _nav_paths(nav)
    section = next((item[SECTION] for item in nav if isinstance(item, dict) and SECTION in item), None)
    if section is None:
        section = []
        nav.append({SECTION: section})
    for notebook in course_notebooks():
        uri = PREFIX + notebook.name
        if uri not in listed:
            log.info("notebooks hook: %s is not in mkdocs.yml's nav; adding it under '%s'", uri, SECTION)
            section.append(uri)
    others = [e for e in section if not _is_notebook(e)]
    notebooks = sorted((e for e in section if _is_notebook(e)), key=lambda e: _entry_path(e).rsplit("/", 1)[-1])
    section[:] = others + notebooks
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files, config):
    """Add notebooks/NN_*.ipynb from the repository root as site files under notebooks/."""
    for notebook in course_notebooks():
        uri = PREFIX + notebook.name
        if files.get_file_from_path(uri) is not None:
            log.warning("notebooks hook: docs/%s duplicates notebooks/%s; delete the copy in docs/", uri, notebook.name)
            continue
        files.append(File(uri, src_dir=str(ROOT), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files


def on_page_context(context, page, config, nav):
    """A notebook page with no sections under its title hides the empty table-of-contents column."""
    if page.file.src_uri.startswith(PREFIX) and page.file.src_uri.endswith(".ipynb"):
        sections = sum(len(item.children) for item in page.toc) if page.toc else 0
        if sections == 0:
            meta = dict(page.meta or {})
            meta["hide"] = [*meta.get("hide", []), "toc"]
            page.meta = meta
    return context
