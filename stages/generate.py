"""generate@<label_noise>: one provider's examples (``data.name``) with one level of
training-label noise.

The dataset records the provider, its source path and a sha256 fingerprint of
what was read, so a changed source file changes this stage's output. DVC does
not see a file at ``data.root`` (a path in params cannot be a templated dep):
after replacing that file, rerun with ``dvc repro -f generate`` (or
``dvc exp run -f``); everything downstream then reruns because the dataset's
fingerprint changed.
"""

import argparse

from _common import run

PARAMS = ("data.num_samples", "data.train_split", "data.seed", "data.noise_seed", "data.name",
          "data.root")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label-noise", type=float, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from biasvar.core.config import load_declared
    from biasvar.data.config import DataParams
    from biasvar.data.dataset import generate, save_dataset

    prm = load_declared(PARAMS)
    cfg = DataParams.from_dict({**prm.subset("data", DataParams.keys()[1:]),
                                "label_noise": [args.label_noise]})
    ds = generate(cfg.num_samples, cfg.train_split, cfg.seed, cfg.label_noise[0],
                  cfg.noise_seed, name=cfg.name, root=cfg.root)
    save_dataset(ds, args.out)
    print(f"generate: {ds.name} {ds.input_shape} x {ds.n_classes} classes, {ds.n_train} train / "
          f"{ds.n_test} test examples, "
          f"{int(ds.noisy.sum())} noisy labels ({ds.noisy.mean():.3f}) -> {args.out}")


if __name__ == "__main__":
    run(main)
