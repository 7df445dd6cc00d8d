"""Validate a whole params file: every section of every stage, before any work.

``python -m biasvar.tools.validate [params.yaml]`` exits 0, or prints one line
per problem, all of them (``error: params.yaml: <key> = <value> is invalid:
<what is allowed>``), and exits 2. ``make pipeline`` runs it before ``dvc repro``; each stage also
validates the keys it reads when it starts. No stage depends on this module,
so registering a new section here reruns nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from biasvar.analysis.config import (
    AlignmentSizeParams,
    CalibrationInterventionParams,
    DecomposeParams,
    RegressParams,
)
from biasvar.core.config import RuntimeParams, Section, read_yaml
from biasvar.core.errors import ParamError
from biasvar.data.config import DataParams, EnsembleParams, SplitParams, n_train_examples
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
    DecomposeParams, RegressParams, AlignmentSizeParams, CalibrationInterventionParams,
    TradeoffParams, RidgelessParams, SpectralParams, PCBiasParams,
    SpectralClsParams, ErankDepthParams, ProbeParams, CollapseParams, Style,
)


def problems(raw: Mapping[str, Any]) -> list[ParamError]:
    """Every problem of a params file: each section's, then the cross-section rules
    (when the sections they need are valid)."""
    errors: list[ParamError] = []
    for model in SECTIONS:
        if model.SECTION not in raw:
            errors.append(ParamError(model.SECTION, None, "missing section; it must be set"))
        else:
            errors += model.problems(raw[model.SECTION])
    if not errors:
        try:
            validate_all(raw)
        except ParamError as e:
            errors.append(e)
    return errors


def validate_all(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every section, then the cross-section rules; returns the models by section name.
    Raises the first problem as a ``ParamError``."""
    out: dict[str, Any] = {}
    for model in SECTIONS:
        if model.SECTION not in raw:
            raise ParamError(model.SECTION, None, "missing section; it must be set")
        out[model.SECTION] = model.from_dict(raw[model.SECTION])
    data, ens = out["data"], out["ensemble"]
    n_train = n_train_examples(data.num_samples, data.train_split)
    k = out["split"].check_against(ens, n_train)
    out["train"].check_against(n_train // k if k else n_train)
    return out


def main(argv: list[str] | None = None) -> int:
    from biasvar.core.errors import BiasvarError

    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "params.yaml"
    try:
        errors = problems(read_yaml(path))
    except BiasvarError as e:  # the file itself: missing, not YAML
        errors = [e]
    for e in errors:  # one line per problem, all of them
        print(f"error: {e}", file=sys.stderr)
    if errors:
        return 2
    print(f"{path}: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
