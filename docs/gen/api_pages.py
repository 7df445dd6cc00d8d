"""The API reference pages and the report figures of the site, as (path, text) pairs.

The navigation in ``mkdocs.yml`` is the one list of API pages: every page listed under
``reference/api/`` documents the module its path names (``reference/api/analysis/decompose.md``
is ``biasvar.analysis.decompose``), so adding a module to the reference is one nav line,
and a nav line whose module does not exist fails the strict build. Pure functions, checked
by ``tests/test_docs.py``; ``gen_pages.py`` writes their output into the build.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

API_DIR = "reference/api/"
API_INDEX = API_DIR + "index.md"
PACKAGE = "biasvar"
# The committed reports whose figures the site shows, as results/<report>/<figure>.png.
REPORTS = ("default", "paper", "biases", "cnn", "digits")
FIGURES_DIR = "results"


def nav_paths(nav: Any) -> Iterator[str]:
    """Every page path of a MkDocs ``nav`` (nested lists of ``title: path`` mappings)."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, Mapping):
        for value in nav.values():
            yield from nav_paths(value)
    elif isinstance(nav, Sequence):
        for item in nav:
            yield from nav_paths(item)


def module_of(path: str) -> str:
    """``reference/api/analysis/decompose.md`` -> ``biasvar.analysis.decompose``."""
    parts = Path(path.removeprefix(API_DIR)).with_suffix("").parts
    return ".".join((PACKAGE, *parts))


def api_pages(nav: Any) -> list[tuple[str, str]]:
    """``(path, module)`` for each API page of the nav, in nav order (not the index)."""
    return [(p, module_of(p)) for p in nav_paths(nav)
            if p.startswith(API_DIR) and p != API_INDEX]


def module_page(module: str) -> str:
    """The Markdown of one module's page: its name as the title, then mkdocstrings'
    rendering of its docstring and public members (options in mkdocs.yml)."""
    return f"# `{module}`\n\n::: {module}\n"


def summary(src: Path, module: str) -> str:
    """The first paragraph of a module's docstring, read from its source without importing
    it (some modules import torch), as one line."""
    rel = Path(*module.split("."))
    path = src / rel.with_suffix(".py")
    if not path.exists():
        path = src / rel / "__init__.py"
    if not path.exists():  # the page's mkdocstrings block fails the build and names it
        return ""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.split("\n\n")[0].split())


def index_page(pages: Sequence[tuple[str, str]], src: Path) -> str:
    """The API overview: every documented module with the first paragraph of its docstring."""
    lines = ["# API reference", "",
             "The public modules of `biasvar`, documented from their docstrings. The stages "
             "in `stages/` are thin scripts over these modules.", "",
             "| Module | What it holds |", "|---|---|"]
    for path, module in pages:
        text = summary(src, module).replace("|", r"\|")
        lines.append(f"| [`{module}`]({path.removeprefix(API_DIR)}) | {text} |")
    return "\n".join(lines) + "\n"


def figures(root: Path) -> list[tuple[Path, str]]:
    """``(source, site path)`` for each PNG of the shown reports:
    ``reports/<report>/<name>.png`` -> ``results/<report>/<name>.png``. A report folder
    that is missing contributes nothing; a page that shows one of its figures then fails
    the strict build on the broken image link."""
    out = []
    for report in REPORTS:
        folder = root / "reports" / report
        for png in sorted(folder.glob("*.png")) if folder.is_dir() else []:
            out.append((png, f"{FIGURES_DIR}/{report}/{png.name}"))
    return out
