"""The documentation site: its generators (configuration reference, API pages, figures)
and the strict build, in which regenerated fragments must show.

The generators live in ``docs/gen/`` (run by the ``gen-files`` plugin at build time); they
are loaded here from their files. The build test copies what the site needs into
``tmp_path``, replaces the generated fragments with sentinels and builds there: a rerun
report must reach the built pages with no hand edit, and a missing fragment must fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml

from biasvar.core.config import SECTION_NAMES, Choice, Ints, Section, read_yaml

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "docs" / "gen"
# The generated fragments that pages include, and a page that must include each.
FRAGMENTS = {
    "reports/default/key_numbers.md": "results.md",
    "reports/default/headline.md": None,  # included where the content puts it
    "bench/results/bench.md": "performance.md",
    "bench/results/generic.md": "performance.md",
    "bench/results/analyze.md": "performance.md",
    "bench/results/launch.md": "scaling.md",
    "bench/results/cost.md": "dynamics-shift.md",
    "reports/comparison.md": "results.md",
    "reports/default/dynamics_shift.md": "dynamics-shift.md",
    "reports/paper/dynamics_shift.md": "dynamics-shift.md",
}
# Modules the API reference must document, besides every study module.
API_MODULES = (
    "biasvar.analysis.decompose", "biasvar.analysis.summary", "biasvar.analysis.alignment",
    "biasvar.analysis.ensemble_size", "biasvar.analysis.calibration",
    "biasvar.analysis.calibration_intervention", "biasvar.core.schema", "biasvar.core.io",
    "biasvar.core.config", "biasvar.core.errors", "biasvar.data.dataset",
    "biasvar.data.splits", "biasvar.ensemble.logits", "biasvar.ensemble.blocks",
    "biasvar.ensemble.train", "biasvar.ensemble.models", "biasvar.report.document",
    "biasvar.analysis.api", "biasvar.analysis.imported", "biasvar.report.analyze",
    "biasvar.report.wording", "biasvar.analysis.dynamics", "biasvar.analysis.shifted",
    "biasvar.report.dynamics", "biasvar.report.shift", "biasvar.ensemble.members",
)
# The banners MkDocs plugins and the theme print about MkDocs 2 (not warnings of the build).
QUIET = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, GEN / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


cref = _load("config_reference")
api = _load("api_pages")


@pytest.fixture(scope="module")
def sections():
    from biasvar.tools.validate import SECTIONS  # imports the study modules (torch)

    return SECTIONS


@pytest.fixture(scope="module")
def dvc() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def page(sections, dvc) -> str:
    params = ROOT / "params.yaml"
    return cref.render(sections, read_yaml(params), dvc, params.read_text(encoding="utf-8"))


def _declaring(dvc: dict[str, Any], key: str) -> list[str]:
    """The stages whose params list names ``key`` or a parent of it, or whose command or
    dependencies interpolate it (``${source}``), read directly."""
    out = []
    for name, body in dvc["stages"].items():
        group = "foreach" in body or "matrix" in body
        spec = body.get("do", body) if "foreach" in body else body
        params = spec.get("params") or []
        texts = " ".join([spec.get("cmd", "")] + [d for d in spec.get("deps") or []
                                                  if isinstance(d, str)])
        if (any(isinstance(p, str) and (key == p or key.startswith(p + ".")) for p in params)
                or "${" + key + "}" in texts):
            out.append(f"{name}@*" if group else name)
    return out


# ---------------------------------------------------------------- configuration reference
def test_every_section_and_key_is_documented(sections, page):
    headings = re.findall(r"^## `([^`]+)`$", page, flags=re.M)
    assert headings == list(SECTION_NAMES)
    for model in sections:
        settings = cref.settings_model(model)
        keys = [k for k in model.model_fields if settings is None or k not in ("base", "configs")]
        if settings is not None:
            keys += [f"base.{k}" for k in settings.model_fields] + ["configs.<name>"]
        body = page.split(f"## `{model.SECTION}`\n", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| `([^`]+)` \|", body, flags=re.M)
        assert rows == keys, model.SECTION


def test_study_sections_expand_base_with_their_settings_model(sections):
    by_name = {m.SECTION: m for m in sections}
    for name in ("spectral", "pc_bias", "spectral_cls", "erank_depth"):
        settings = cref.settings_model(by_name[name])
        assert settings is not None and settings.SECTION == f"{name}.base"
    assert cref.settings_model(by_name["train"]) is None


def test_declared_by_is_what_dvc_yaml_declares(sections, dvc):
    stages = cref.stages(dvc)
    assert cref.declared_by("train.lr", stages) == ["train@*"]
    assert cref.declared_by("plot.dpi", stages) == ["plot"]
    assert cref.declared_by("model.depth", stages) == ["train@*", "plot"]
    for model in sections:
        if cref.settings_model(model) is not None or model.SECTION == "runtime":
            continue
        for key in model.model_fields:
            # a one-value section (source) is its own key
            full = model.SECTION if key == model.SECTION else f"{model.SECTION}.{key}"
            assert cref.declared_by(full, stages) == _declaring(dvc, full), full
    assert _declaring(dvc, "source") == ["decompose", "alignment_size",
                                         "calibration_intervention", "dynamics", "plot"]


def test_study_configs_and_runtime(dvc):
    stages = cref.stages(dvc)
    assert cref.declared_by("spectral.base.width", stages) == ["spectral@*"]
    assert cref.declared_by("spectral.configs.<name>", stages) == ["plot", "spectral@<name>"]
    assert cref.instances_of("spectral.configs", stages) == ["spectral@*"]
    assert cref.instances_of("data.label_noise", stages) == ["generate@*", "train@*"]
    for key in ("device", "threads", "progress"):
        assert cref.declared_by(f"runtime.{key}", stages) == []


def test_a_rows_cells(sections, dvc):
    by_name = {m.SECTION: m for m in sections}
    params = read_yaml(ROOT / "params.yaml")
    rows = {r.key: r for r in cref.section_rows(by_name["train"], params, cref.stages(dvc))}
    lr = rows["lr"]
    assert (lr.type, lr.allowed, lr.default) == ("float", "a positive number", "required")
    assert lr.value == cref.format_value(params["train"]["lr"])
    assert rows["batch_size"].type == "int or null"
    runtime = {r.key: r for r in cref.section_rows(by_name["runtime"], params, [])}
    assert (runtime["device"].type, runtime["device"].default) == (
        "choice of auto, cpu, cuda", "auto")


def test_type_names():
    assert cref.type_name(Choice("a", "b")) == "choice of a, b"
    assert cref.type_name(Ints(1, "integers")) == "list of int"
    assert cref.type_name(Annotated[int | None, "x"]) == "int or null"
    assert cref.type_name(tuple[int, int]) == "list of 2 int"
    assert cref.type_name(dict[str, Any]) == "mapping of str to any"
    assert cref.format_value({"a": [True, None, 0.5]}) == "{a: [true, null, 0.5]}"


def test_comments_of_models_and_params_files():
    class Demo(Section):
        # the block above a field without a comment of its own
        alpha: int
        beta: int  # its own comment
        gamma: int  # noqa: E501

    assert cref.field_comments(Demo) == {"alpha": "the block above a field without a comment "
                                                  "of its own", "beta": "its own comment"}
    text = ("a:\n  b: 1  # one\n  c: [1,\n      2]  # continued\n  d: 'x # not'\n"
            "e:\n  f: {g: 1}  # flow\n")
    assert cref.yaml_comments(text) == {"a.b": "one", "a.c": "continued", "e.f": "flow"}


def test_table_text_is_escaped():
    assert cref._text("a | b *c* <name> <= 2") == r"a \| b \*c\* &lt;name> <= 2"


# ---------------------------------------------------------------- API pages and figures
def test_the_nav_lists_every_public_module():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    modules = [m for _, m in api.api_pages(nav)]
    studies = sorted(f"biasvar.studies.{p.stem}" for p in (ROOT / "src/biasvar/studies")
                     .glob("*.py") if not p.stem.startswith("_"))
    missing = [m for m in (*API_MODULES, *studies) if m not in modules]
    assert not missing, f"add to the API nav of mkdocs.yml: {missing}"
    assert len(modules) == len(set(modules))
    for module in modules:
        assert api.summary(ROOT / "src", module), f"{module}: no module docstring"


def test_api_paths_and_figures(tmp_path):
    assert api.module_of("reference/api/analysis/decompose.md") == "biasvar.analysis.decompose"
    nav = [{"A": [{"x": "index.md"}, {"B": [{"d": "reference/api/core/io.md"}]}]},
           "reference/api/index.md"]
    assert api.api_pages(nav) == [("reference/api/core/io.md", "biasvar.core.io")]
    for report in ("default", "provenance"):  # provenance/ holds no report
        (tmp_path / "reports" / report).mkdir(parents=True)
        (tmp_path / "reports" / report / "fig.png").write_bytes(b"png")
    assert [t for _, t in api.figures(tmp_path)] == ["results/default/fig.png"]


# ---------------------------------------------------------------- the build
def _snippets(text: str) -> list[str]:
    # --8<-- "path" (one line) and the block form (paths between two --8<-- lines)
    one = re.findall(r'^\s*-{1,}8<-{1,}\s+"([^"]+)"', text, flags=re.M)
    blocks = re.findall(r"^\s*-{1,}8<-{1,}\s*$\n(.*?)^\s*-{1,}8<-{1,}\s*$", text,
                        flags=re.M | re.S)
    paths = one + [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip()]
    return [re.sub(r"(:-?\d*)+$", "", p) for p in paths]  # drop a line range (path:2:5)


def _copy_site_sources(dest: Path) -> None:
    """What the build reads: config, pages, generators, sources, params, reports, and every
    file a page includes."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("mkdocs.yml", "dvc.yaml", "params.yaml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    for folder in ("docs", "src", "reports", "bench/results"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    for md in (ROOT / "docs").rglob("*.md"):
        for rel in _snippets(md.read_text(encoding="utf-8")):
            src = ROOT / rel
            if src.is_file() and not (dest / rel).exists():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)


def _build(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(project / "site")],
        cwd=project, capture_output=True, text=True, timeout=300,
        env={**os.environ, **QUIET})


def _html(project: Path, page: str) -> str:
    stem = Path(page).with_suffix("")
    path = project / "site" / ("index.html" if page == "index.md" else stem / "index.html")
    return path.read_text(encoding="utf-8")


def test_regenerated_fragments_flow_into_the_built_site(tmp_path):
    _copy_site_sources(tmp_path)
    including: dict[str, list[str]] = {frag: [] for frag in FRAGMENTS}
    for md in sorted((ROOT / "docs").rglob("*.md")):
        for frag in _snippets(md.read_text(encoding="utf-8")):
            # every included file that a stage or the benchmark generates
            if frag in FRAGMENTS or frag.startswith(("reports/", "bench/results/")):
                including.setdefault(frag, []).append(md.relative_to(ROOT / "docs").as_posix())
    for frag, page in FRAGMENTS.items():
        assert including[frag], f"no page of docs/ includes {frag}"
        assert page is None or page in including[frag], f"docs/{page} must include {frag}"
    for i, frag in enumerate(including):
        (tmp_path / frag).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / frag).write_text(f"SENTINEL{i}REGENERATED\n", encoding="utf-8")
    r = _build(tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for i, frag in enumerate(including):
        for page in including[frag]:
            assert f"SENTINEL{i}REGENERATED" in _html(tmp_path, page), (frag, page)
    # the generated pages and the figures are in the site too
    assert "train@*" in _html(tmp_path, "reference/configuration.md")
    assert (tmp_path / "site/results/default/alignment.png").is_file()

    # a fragment that is missing fails the build, naming it
    (tmp_path / "reports/default/key_numbers.md").unlink()
    r = _build(tmp_path)
    assert r.returncode != 0 and "key_numbers.md" in r.stderr + r.stdout
