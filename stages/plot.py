"""plot: paper figures and the generated report README from the analysis tables."""

import argparse

from _common import run

PARAMS = ("plot", "model", "pc_bias.converged_fraction")


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
        add_pc_bias,
        add_studies,
        main_report,
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
        pcb = sorted((st / "pc_bias").glob("*.csv"))
        if pcb:
            pcb_metrics = {f.stem: read_json(Path(args.metrics).parent / f"pc_bias-{f.stem}.json")
                           for f in pcb}
            metrics.update({f"pc_bias-{k}": v for k, v in pcb_metrics.items()})
            add_pc_bias(rep, pd.concat([pd.read_csv(f).assign(config=f.stem) for f in pcb]),
                        pcb_metrics, prm.get("pc_bias.converged_fraction"), style)
        add_studies(rep, pd.read_csv(st / "tradeoff.csv"), pd.read_csv(st / "ridgeless.csv"),
                    pd.concat([pd.read_csv(f) for f in spectral]) if spectral else None,
                    pd.read_csv(st / "erank.csv"), style)
    out = Path(args.out) / style.report
    write_report(rep, out, metrics, style.dpi)
    print(f"plot: {len(rep.figures)} figures -> {out}")


if __name__ == "__main__":
    run(main)
