"""plot: paper figures and the generated report README from the analysis tables."""

import argparse

from _common import run

PARAMS = ("plot", "model", "pc_bias.converged_fraction", "pc_bias.configs",
          "spectral_cls.configs", "erank_depth.configs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--decomposition", required=True)
    ap.add_argument("--fits", required=True)
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--curves", required=True)
    ap.add_argument("--members", required=True, help="collect's per-member table (CSV)")
    ap.add_argument("--calibration", help="calibration_intervention's per-config table (CSV), "
                    "optional")
    ap.add_argument("--alignment-size", help="alignment_size's per-size and K -> inf fits "
                    "(two CSVs, comma-separated), optional")
    ap.add_argument("--studies", help="data/studies (companion-study tables), optional")
    ap.add_argument("--out", required=True, help="reports/ (the report name is a param)")
    args = ap.parse_args()

    from pathlib import Path

    from biasvar.core.config import load_declared
    from biasvar.core.io import read_json
    from biasvar.core.schema import DECOMPOSITION, FITS, RELIABILITY, SUMMARY, read_table
    from biasvar.ensemble.config import ModelParams
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

    prm = load_declared(PARAMS)
    style = prm.section(Style)
    model = prm.section(ModelParams)
    d = Path(args.decomposition)
    examples = read_table(d / "examples.parquet", DECOMPOSITION).to_pandas()
    summary = read_table(d / "summary.parquet", SUMMARY).to_pandas()
    reliability = read_table(d / "reliability.parquet", RELIABILITY).to_pandas()
    fits = read_table(args.fits, FITS).to_pandas()
    metrics = {"alignment": read_json(args.metrics)}
    import pandas as pd

    curves = pd.read_csv(args.curves)
    members = pd.read_csv(args.members)
    rep = main_report(examples, summary, reliability, fits, curves, members, metrics, style,
                      model.arch, model.depth, model.residual)
    if args.alignment_size:
        per_size, inf = args.alignment_size.split(",")
        add_alignment_size(rep, pd.read_csv(per_size), pd.read_csv(inf), style)
        metrics["alignment_size"] = read_json(Path(args.metrics).parent / "alignment_size.json")
    if args.calibration:
        add_calibration_intervention(rep, pd.read_csv(args.calibration), style)
        metrics["calibration_intervention"] = read_json(
            Path(args.metrics).parent / "calibration_intervention.json")
    if args.studies:
        st = Path(args.studies)
        spectral = sorted((st / "spectral").glob("*.csv"))
        for name in ("tradeoff", "ridgeless", "erank"):
            metrics[name] = read_json(Path(args.metrics).parent / f"{name}.json")
        # each spectral@<config> writes its table and its metrics together; the
        # tables (a declared dependency) name the configurations
        for f in spectral:
            metrics[f"spectral-{f.stem}"] = read_json(Path(args.metrics).parent
                                                      / f"spectral-{f.stem}.json")
        if (st / "collapse.csv").exists():
            add_collapse(rep, pd.read_csv(st / "collapse.csv"),
                         pd.read_csv(st / "collapse_examples.csv"),
                         pd.read_csv(st / "collapse_model.csv"), style)
            metrics["collapse"] = read_json(Path(args.metrics).parent / "collapse.json")
        # the simplicity-bias studies: each <study>@<config> writes its table and metrics
        # together; the tables (a declared dependency) name the configurations
        bias = {}
        for study in ("pc_bias", "spectral_cls", "erank_depth"):
            # only the configs params.yaml declares now: a folder can still hold the
            # tables of configs an earlier variant ran (DVC does not delete them)
            files = [st / study / f"{c}.csv" for c in sorted(prm.get(f"{study}.configs"))]
            bias[study] = (pd.concat([pd.read_csv(f).assign(config=f.stem) for f in files])
                           if files else None,
                           {f.stem: read_json(Path(args.metrics).parent / f"{study}-{f.stem}.json")
                            for f in files})
            metrics.update({f"{study}-{k}": v for k, v in bias[study][1].items()})
        add_studies(rep, pd.read_csv(st / "tradeoff.csv"), pd.read_csv(st / "ridgeless.csv"),
                    pd.concat([pd.read_csv(f) for f in spectral]) if spectral else None,
                    pd.read_csv(st / "erank.csv"), style)
        if bias["pc_bias"][1]:
            add_pc_bias(rep, *bias["pc_bias"], prm.get("pc_bias.converged_fraction"), style)
        if bias["spectral_cls"][1]:
            add_spectral_cls(rep, *bias["spectral_cls"], style)
        if bias["erank_depth"][1]:
            add_erank_depth(rep, *bias["erank_depth"], style)
        summary_bias = simplicity_table(
            bias["pc_bias"][1], bias["spectral_cls"][1], bias["erank_depth"][1],
            {f.stem: metrics[f"spectral-{f.stem}"] for f in spectral})
        if len(summary_bias):
            add_simplicity_summary(rep, summary_bias)
            metrics["simplicity"] = summary_bias.to_dict(orient="records")
    out = Path(args.out) / style.report
    write_report(rep, out, metrics, style.dpi)
    print(f"plot: {len(rep.figures)} figures -> {out}")


if __name__ == "__main__":
    run(main)
