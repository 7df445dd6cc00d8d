"""The package layout mirrors the pipeline, and dvc.yaml's code dependencies are exact.

- Each stage's ``deps`` list, for code, exactly the library modules (files) that its
  script can run, directly or through other library modules, plus its script and
  ``stages/_common.py``: editing a module a stage does not import reruns nothing
  (a docstring edit in ``ensemble/logits.py`` reruns ``collect`` and what reads its
  outputs, never ``train``). The one folder is ``data/providers``: ``data.name``
  picks a provider module by name at run time, which no import statement shows.
  Non-Python files a module reads (the report's Jinja2 template) are listed in
  ``DATA_FILES`` and declared by every stage that runs the module.
- No module imports from a subpackage later in the pipeline order
  (core <- data <- ensemble <- analysis <- report; studies use core, data and
  ensemble; tools may use anything, and no stage may use tools).

Imports are read with ``ast`` (module level and inside functions: a lazy import
still runs when the function does), so the check needs no import of torch.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = SRC / "biasvar"

# pipeline order: a subpackage may import only from itself and those listed for it
ALLOWED = {
    "core": {"core"},
    "data": {"core", "data"},
    "ensemble": {"core", "data", "ensemble"},
    "analysis": {"core", "data", "ensemble", "analysis"},
    "studies": {"core", "data", "ensemble", "studies"},
    "report": {"core", "data", "ensemble", "analysis", "report"},
    "tools": {"core", "data", "ensemble", "analysis", "studies", "report", "tools"},
    "cli": {"core", "data", "ensemble", "analysis", "report", "tools", "cli"},
}


def module_file(name: str) -> Path:
    """``biasvar.a.b`` -> its source file (module or package ``__init__``)."""
    p = SRC.joinpath(*name.split("."))
    return p / "__init__.py" if p.is_dir() else p.with_suffix(".py")


def _imports(path: Path) -> set[str]:
    """Every ``biasvar`` module imported anywhere in ``path`` (and the packages on the way)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            # ``from biasvar.report import figures``: figures is a module
            names += [f"{node.module}.{a.name}" for a in node.names
                      if module_file(f"{node.module}.{a.name}").exists()]
        for n in names:
            if n == "biasvar" or n.startswith("biasvar."):
                parts = n.split(".")
                # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
                out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in out if module_file(m).exists()}


@cache
def closure(path: Path) -> frozenset[str]:
    """The library modules that running ``path`` can execute (transitive imports)."""
    seen: set[str] = set()
    todo = list(_imports(path))
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo.extend(_imports(module_file(m)) - seen)
    return frozenset(seen)


# Files a module reads at run time that are not Python (no import shows them): a stage
# whose scripts run the module depends on them too.
DATA_FILES = {"biasvar.report.document": ("src/biasvar/report/templates/report.md.j2",)}


def as_dep(module: str) -> str:
    """The dvc.yaml dependency that covers ``module``: its own file (a package's
    ``__init__.py``), except the data providers, which ``data.name`` picks at run time
    by name (``importlib``), so a stage that loads data depends on their folder."""
    if module == "biasvar.data.providers" or module.startswith("biasvar.data.providers."):
        return "src/biasvar/data/providers"
    return str(module_file(module).relative_to(ROOT))


def dvc_stages() -> dict[str, dict]:
    return {name: st.get("do", st)
            for name, st in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items()}


STAGES = sorted(dvc_stages())


@pytest.mark.parametrize("stage", STAGES)
def test_code_deps_are_exactly_the_imported_subpackages(stage):
    spec = dvc_stages()[stage]
    script = ROOT / "stages" / f"{stage}.py"
    declared = {d for d in spec["deps"] if d.startswith(("src/", "stages/"))}
    modules = closure(script) | closure(ROOT / "stages" / "_common.py")
    needed = {as_dep(m) for m in modules}
    needed |= {f for m in modules for f in DATA_FILES.get(m, ())}
    needed |= {f"stages/{stage}.py", "stages/_common.py"}
    assert declared == needed, (f"{stage}: missing {sorted(needed - declared)}, "
                                f"not imported {sorted(declared - needed)}")
    for d in declared:
        assert (ROOT / d).exists(), d


def test_every_library_module_is_in_a_subpackage_of_the_pipeline():
    top = {p.name for p in PKG.iterdir() if not p.name.startswith("__")}
    assert top == set(ALLOWED), "modules belong in a subpackage: " + ", ".join(sorted(top))


def test_no_module_imports_from_later_in_the_pipeline():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).parts
        if len(rel) == 1:
            continue
        sub = rel[0]
        for m in _imports(path):
            parts = m.split(".")
            if len(parts) > 1 and parts[1] not in ALLOWED[sub]:
                bad.append(f"{path.relative_to(ROOT)} imports {m}")
    assert not bad, "\n".join(bad)


def test_no_stage_imports_the_tools():
    for stage in STAGES:
        mods = closure(ROOT / "stages" / f"{stage}.py")
        assert not any(m.startswith("biasvar.tools") for m in mods), stage


def test_a_study_stage_depends_on_its_own_study_module_only():
    studies = {"tradeoff": "tradeoff", "ridgeless": "ridgeless", "spectral": "spectral",
               "probe": "effective_rank"}
    for stage, module in studies.items():
        deps = [d for d in dvc_stages()[stage]["deps"] if d.startswith("src/biasvar/studies/")]
        assert sorted(deps) == sorted(["src/biasvar/studies/__init__.py",
                                       "src/biasvar/studies/common.py",
                                       f"src/biasvar/studies/{module}.py"]), stage
