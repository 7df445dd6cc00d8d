"""plot: paper figures and the generated report README from the analysis tables."""

import argparse

from _common import run

PARAMS = ("plot", "model", "pc_bias.converged_fraction", "pc_bias.configs", "spectral.configs",
          "spectral_cls.configs", "erank_depth.configs")
# The studies whose configs (params keys) name the tables plot reads.
CONFIG_STUDIES = ("spectral", "pc_bias", "spectral_cls", "erank_depth")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--decomposition", required=True)
    ap.add_argument("--fits", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--source", required=True, help="the source folder (data/sources/<source>): "
                    "a trained ensemble's training curves and per-member table")
    ap.add_argument("--calibration", help="calibration_intervention's per-config table (CSV), "
                    "optional")
    ap.add_argument("--alignment-size", help="alignment_size's per-size and K -> inf fits "
                    "(two CSVs, comma-separated), optional")
    ap.add_argument("--dynamics", help="the dynamics stage's folder (data/dynamics), optional")
    ap.add_argument("--shift", help="the shift stage's folder (data/shift), optional")
    ap.add_argument("--studies", help="data/studies (companion-study tables), optional")
    ap.add_argument("--out", required=True, help="reports/ (the report name is a param)")
    args = ap.parse_args()

    from collections.abc import Mapping
    from pathlib import Path

    from biasvar.core.config import load_declared
    from biasvar.core.errors import ParamError
    from biasvar.core.io import read_json
    from biasvar.core.schema import (
        ALIGNMENT_SIZE_CSV,
        ALIGNMENT_SIZE_INF_CSV,
        CALIBRATION_INTERVENTION_CSV,
        COLLAPSE_CSV,
        COLLAPSE_EXAMPLES_CSV,
        COLLAPSE_MODEL_CSV,
        CURVES_CSV,
        DECOMPOSITION,
        DYNAMICS_FITS_CSV,
        DYNAMICS_SUMMARY_CSV,
        ERANK_CSV,
        ERANK_DEPTH_CSV,
        FITS,
        MEMBERS_CSV,
        PC_BIAS_CSV,
        RELIABILITY,
        RIDGELESS_CSV,
        SHIFT_EXAMPLES_CSV,
        SHIFT_FITS_CSV,
        SHIFT_SUMMARY_CSV,
        SPECTRAL_CLS_CSV,
        SPECTRAL_CSV,
        SUMMARY,
        TRADEOFF_CSV,
        check_config_name,
        read_csv,
        read_params,
        read_table,
    )
    from biasvar.ensemble.config import ModelParams
    from biasvar.ensemble.source import read_source
    from biasvar.report.config import Style
    from biasvar.report.document import (
        add_alignment_size,
        add_calibration_intervention,
        add_collapse,
        add_erank_depth,
        add_pc_bias,
        add_simplicity_summary,
        add_spectral_cls,
        add_studies,
        main_report,
        simplicity_table,
        write_report,
    )

    if args.alignment_size and len(args.alignment_size.split(",")) != 2:
        ap.error(f"--alignment-size {args.alignment_size!r}: two CSV paths, comma-separated")
    prm = load_declared(PARAMS)
    style = prm.section(Style)
    model = prm.section(ModelParams)
    # Each config key names a table that the study stage wrote (and refused to write under
    # any other name); plot reads those tables, never whatever else lies in the folder.
    configs = {}
    for study in CONFIG_STUDIES:
        declared = prm.get(f"{study}.configs")
        if not isinstance(declared, Mapping):
            raise ParamError(f"{study}.configs", declared, "a mapping of name -> overrides")
        configs[study] = sorted(check_config_name(study, c) for c in declared)
    d = Path(args.decomposition)
    examples = read_table(d / "examples.parquet", DECOMPOSITION).to_pandas()
    summary = read_table(d / "summary.parquet", SUMMARY).to_pandas()
    reliability = read_table(d / "reliability.parquet", RELIABILITY).to_pandas()
    fits = read_table(args.fits, FITS).to_pandas()
    metrics = {"alignment": read_json(args.metrics)}
    import pandas as pd

    # Every CSV goes through read_csv: an empty, half-written or foreign table is one line
    # naming the file and the column, before any figure is drawn.
    # An imported ensemble (test logits only) has no training run to plot: no curves, no
    # in-bag errors, no out-of-bag examples for the calibration intervention.
    src = read_source(args.source)
    trained = src.kind == "train"
    curves = read_csv(Path(args.source) / "curves.csv", CURVES_CSV) if trained else None
    members = read_csv(Path(args.source) / "members.csv", MEMBERS_CSV) if trained else None
    # the level of the decomposition's intervals, as decompose recorded it in its files
    recorded = read_params(d / "summary.parquet")
    ci = recorded.get("decompose", {}).get("ci", 0.95)
    # the data the members were trained on (name, input shape, class count), as decompose
    # recorded it: it names the dataset in the title and sizes the parameter counts
    rep = main_report(examples, summary, reliability, fits, curves, members, metrics, style,
                      model.arch, model.depth, model.residual, ci=ci,
                      data=recorded.get("data"), module=model.module)
    if args.alignment_size:
        per_size, inf = args.alignment_size.split(",")
        add_alignment_size(rep, read_csv(per_size, ALIGNMENT_SIZE_CSV),
                           read_csv(inf, ALIGNMENT_SIZE_INF_CSV), style)
        metrics["alignment_size"] = read_json(Path(args.metrics).parent / "alignment_size.json")
    if args.calibration and trained:
        add_calibration_intervention(rep, read_csv(args.calibration,
                                                   CALIBRATION_INTERVENTION_CSV), style)
        metrics["calibration_intervention"] = read_json(
            Path(args.metrics).parent / "calibration_intervention.json")
    mdir = Path(args.metrics).parent
    if args.dynamics:
        from biasvar.report.dynamics import add_dynamics

        dyn = Path(args.dynamics)
        metrics["dynamics"] = read_json(mdir / "dynamics.json")
        if metrics["dynamics"]["steps"]:  # an imported ensemble has no checkpoints
            add_dynamics(rep, read_csv(dyn / "summary.csv", DYNAMICS_SUMMARY_CSV),
                         read_csv(dyn / "fits.csv", DYNAMICS_FITS_CSV), metrics["dynamics"],
                         style)
    # an imported ensemble comes without models: nothing to score on shifted sets (the
    # shift stage scores the pipeline's own trained members, which it does not describe)
    if args.shift and trained:
        from biasvar.report.shift import add_shift

        sh = Path(args.shift)
        metrics["shift"] = read_json(mdir / "shift.json")
        if metrics["shift"]["kinds"]:
            add_shift(rep, read_csv(sh / "summary.csv", SHIFT_SUMMARY_CSV),
                      read_csv(sh / "fits.csv", SHIFT_FITS_CSV),
                      read_csv(sh / "examples.csv", SHIFT_EXAMPLES_CSV), metrics["shift"],
                      style)
    if args.studies:
        st = Path(args.studies)
        for name in ("tradeoff", "ridgeless", "erank"):
            metrics[name] = read_json(mdir / f"{name}.json")
        # each spectral@<config> writes its table and its metrics together
        spectral = [read_csv(st / "spectral" / f"{c}.csv", SPECTRAL_CSV)
                    for c in configs["spectral"]]
        for c in configs["spectral"]:
            metrics[f"spectral-{c}"] = read_json(mdir / f"spectral-{c}.json")
        add_collapse(rep, read_csv(st / "collapse.csv", COLLAPSE_CSV),
                     read_csv(st / "collapse_examples.csv", COLLAPSE_EXAMPLES_CSV),
                     read_csv(st / "collapse_model.csv", COLLAPSE_MODEL_CSV), style)
        metrics["collapse"] = read_json(mdir / "collapse.json")
        # the simplicity-bias studies: each <study>@<config> writes its table and metrics
        # together; only the configs params.yaml declares now (a folder can still hold the
        # tables of configs an earlier variant ran: DVC does not delete them)
        fmt = {"pc_bias": PC_BIAS_CSV, "spectral_cls": SPECTRAL_CLS_CSV,
               "erank_depth": ERANK_DEPTH_CSV}
        bias = {}
        for study in ("pc_bias", "spectral_cls", "erank_depth"):
            names = configs[study]
            bias[study] = (pd.concat([read_csv(st / study / f"{c}.csv", fmt[study])
                                      .assign(config=c) for c in names]) if names else None,
                           {c: read_json(mdir / f"{study}-{c}.json") for c in names})
            metrics.update({f"{study}-{k}": v for k, v in bias[study][1].items()})
        add_studies(rep, read_csv(st / "tradeoff.csv", TRADEOFF_CSV),
                    read_csv(st / "ridgeless.csv", RIDGELESS_CSV),
                    pd.concat(spectral) if spectral else None,
                    read_csv(st / "erank.csv", ERANK_CSV), style)
        if bias["pc_bias"][1]:
            add_pc_bias(rep, *bias["pc_bias"], prm.get("pc_bias.converged_fraction"), style)
        if bias["spectral_cls"][1]:
            add_spectral_cls(rep, *bias["spectral_cls"], style)
        if bias["erank_depth"][1]:
            add_erank_depth(rep, *bias["erank_depth"], style)
        summary_bias = simplicity_table(
            bias["pc_bias"][1], bias["spectral_cls"][1], bias["erank_depth"][1],
            {c: metrics[f"spectral-{c}"] for c in configs["spectral"]})
        if len(summary_bias):
            add_simplicity_summary(rep, summary_bias)
            metrics["simplicity"] = summary_bias.to_dict(orient="records")
    out = Path(args.out) / style.report
    write_report(rep, out, metrics, style.dpi)
    print(f"plot: {len(rep.figures)} figures -> {out}")


if __name__ == "__main__":
    run(main)
