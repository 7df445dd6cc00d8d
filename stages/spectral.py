"""spectral@<config>: spectral bias of one MLP configuration (DFT magnitudes over training)."""

import argparse

from _common import run

# ${key} is the configuration's name (dvc.yaml foreach): each stage declares its own entry.
PARAMS = ("spectral.frequencies", "spectral.n_points", "spectral.log_every", "spectral.seed",
          "spectral.base", "spectral.configs.${key}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True, help="a key of spectral.configs")
    ap.add_argument("--out", required=True, help="table (CSV), one row per (step, frequency)")
    ap.add_argument("--metrics", required=True, help="metrics (JSON)")
    args = ap.parse_args()

    from biasvar.core.config import load_declared, load_runtime
    from biasvar.studies.common import write_result
    from biasvar.studies.spectral import SpectralParams, fit_spectral

    prm = load_declared(p.replace("${key}", args.config) for p in PARAMS)
    raw = {k: prm.get(f"spectral.{k}") for k in ("frequencies", "n_points", "log_every", "seed",
                                                  "base")}
    raw["configs"] = {args.config: prm.get(f"spectral.configs.{args.config}")}
    cfg = SpectralParams.from_dict(raw)
    c = cfg.runs[0]
    # A 200-point full-batch MLP is too small to gain from threads, and on a busy
    # machine a second thread mostly waits: one thread unless runtime.threads says.
    threads = load_runtime().threads or 1
    result = fit_spectral(c.name, cfg.frequencies, cfg.n_points, c.amplitudes, c.activation,
                          c.depth, c.width, c.optimizer, c.lr, c.momentum, c.steps,
                          cfg.log_every, cfg.seed, threads=threads)
    write_result(result, args.out, args.metrics)
    m = result.metrics
    print(f"spectral@{c.name}: {c.steps} steps, final loss {m['final_loss']:.4f}, first learned "
          f"frequency {m['first_learned']} -> {args.out}")


if __name__ == "__main__":
    run(main)
