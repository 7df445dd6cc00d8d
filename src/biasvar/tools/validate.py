"""Validate a whole params file: every section of every stage, before any work.

``python -m biasvar.tools.validate [params.yaml]`` exits 0, or prints one line
per problem, all of them (``error: params.yaml: <key> = <value> is invalid:
<what is allowed>``), and exits 2. ``make pipeline`` runs it before ``dvc repro``; each stage also
validates the keys it reads when it starts. Both read the file with the same strict
loader (``core.config.read_yaml``: duplicate keys, undecodable bytes, binary files,
directories and unknown sections are one line each, naming the file), so validation
and the stages never disagree about a file. Bad arguments (two paths, an option) are one
line too. No stage depends on this module, so registering a new section here reruns
nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from biasvar.analysis.config import (
    AlignmentSizeParams,
    CalibrationInterventionParams,
    DecomposeParams,
    DynamicsParams,
    ImportParams,
    RegressParams,
)
from biasvar.analysis.shifted import ShiftParams
from biasvar.core.config import RuntimeParams, Section, SourceParams, check_sections, read_yaml
from biasvar.core.errors import BiasvarError, ParamError
from biasvar.data.config import DataParams, EnsembleParams, SplitParams
from biasvar.ensemble.config import ModelParams, TrainParams
from biasvar.report.config import Style
from biasvar.studies.collapse import CollapseParams
from biasvar.studies.effective_rank import ProbeParams
from biasvar.studies.erank_depth import ErankDepthParams
from biasvar.studies.pc_bias import PCBiasParams
from biasvar.studies.ridgeless import RidgelessParams
from biasvar.studies.spectral import SpectralParams
from biasvar.studies.spectral_cls import SpectralClsParams
from biasvar.studies.tradeoff import TradeoffParams

# Every section of params.yaml, in pipeline order; each model lives in the
# subpackage that reads it.
SECTIONS: tuple[type[Section], ...] = (
    DataParams, SplitParams, EnsembleParams, ModelParams, TrainParams, RuntimeParams,
    SourceParams, ImportParams, DecomposeParams, RegressParams, AlignmentSizeParams,
    CalibrationInterventionParams, DynamicsParams, ShiftParams,
    TradeoffParams, RidgelessParams, SpectralParams, PCBiasParams,
    SpectralClsParams, ErankDepthParams, ProbeParams, CollapseParams, Style,
)
# The loader (core) refuses unknown sections by the names in core.config.SECTION_NAMES,
# which must list these sections in this order (tests/test_faults_params.py checks it).


def problems(raw: Mapping[str, Any], root: Path | None = None) -> list[BiasvarError]:
    """Every problem of a params file: an unknown section, each section's problems, then
    the cross-section rules (when the sections they need are valid)."""
    errors: list[BiasvarError] = []
    try:
        check_sections(raw)
    except BiasvarError as e:
        errors.append(e)
    for model in SECTIONS:
        if model.SECTION not in raw:
            errors.append(ParamError(model.SECTION, None, "missing section; it must be set"))
        else:
            errors += model.problems(raw[model.SECTION])
    if not errors:
        try:
            validate_all(raw, root)
        except BiasvarError as e:
            errors.append(e)
    return errors


def validate_all(raw: Mapping[str, Any], root: Path | None = None) -> dict[str, Any]:
    """Every section, then the cross-section rules; returns the models by section name.

    Raises the first problem: a ``ParamError`` (an ``InputError`` for an unknown
    section, as the loader raises for a file). The cross-section rules refuse the
    configurations that cannot produce a report, before any training (the ``split``
    stage applies the same ``SplitParams.check_against``): fewer than 2 draws, and a
    split that leaves a draw no out-of-bag example (``split.method: full``); the batch
    size is checked against a draw's size (half of the training set for ``half``).
    ``import.path`` must exist under ``root`` (the params file's folder), when given. A
    ``model.module`` factory is imported, built at every width and run on two inputs
    of the data's shape (``ensemble.models.check_factory``).
    """
    check_sections(raw)
    out: dict[str, Any] = {}
    for model in SECTIONS:
        if model.SECTION not in raw:
            raise ParamError(model.SECTION, None, "missing section; it must be set")
        out[model.SECTION] = model.from_dict(raw[model.SECTION])
    # the import stage reads import.path under either source, relative to the project:
    # ``root``, the params file's folder (checked only when known)
    if root is not None and not (root / out["import"].path).exists():
        raise ParamError("import.path", out["import"].path,
                         "an existing .npz, .parquet or directory (relative to the project)")
    data, ens, split = out["data"], out["ensemble"], out["split"]
    n_train = data.train_size()  # a file provider with num_samples null reads its labels
    k = split.check_against(ens, n_train)
    out["train"].check_against(split.draw_size(n_train, k))
    out["shift"].check_data(data.name)
    if out["model"].arch == "module":  # import, build and run the user's factory now
        from biasvar.data.providers import load_source
        from biasvar.ensemble.models import check_factory, load_factory

        load_factory(out["model"].module)  # an import error first, before loading data
        src = load_source(data.name, data.num_samples, data.train_split, data.seed, data.root)
        check_factory(out["model"].module, src.input_shape, src.n_classes, list(ens.widths))
    return out


USAGE = "python -m biasvar.tools.validate [PARAMS_FILE] (default params.yaml)"


def main(argv: list[str] | None = None) -> int:
    """Validate one params file; every problem is one ``error:`` line on stderr, exit 2."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(f"usage: {USAGE}")
        return 0
    # Every argument is checked before any work: a second path was silently ignored.
    option = next((a for a in args if a.startswith("-")), None)
    if option is not None or len(args) > 1:
        what = (f"{option}: unknown option" if option is not None else
                f"{' '.join(args)}: {len(args)} arguments; expected one params file at most")
        print(f"error: {what}; usage: {USAGE}", file=sys.stderr)
        return 2
    path = args[0] if args else "params.yaml"
    try:
        errors = problems(read_yaml(path), Path(path).parent)
    except BiasvarError as e:  # the file itself: missing, a directory, not text, not YAML
        errors = [e]
    for e in errors:  # one line per problem, all of them
        text = str(e)
        if isinstance(e, ParamError) and Path(path).name != "params.yaml":
            # a ParamError names params.yaml; here the file has another name
            text = f"{path}: " + text.removeprefix("params.yaml: ")
        print(f"error: {text}", file=sys.stderr)
    if errors:
        return 2
    print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    from biasvar.tools.cli import run_cli

    raise SystemExit(run_cli(main))
