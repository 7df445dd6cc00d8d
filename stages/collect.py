"""collect: merge the members that params list into the Parquet logits dataset."""

import argparse

from _common import run

PARAMS = ("data.label_noise", "ensemble")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--members", required=True, help="root of the train stages' outputs")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from biasvar.core.config import load_declared
    from biasvar.data.config import EnsembleParams, check_label_noise
    from biasvar.ensemble.logits import collect

    prm = load_declared(PARAMS)
    # Raw values (not floats) so directory names match dvc.yaml's ${item.noise} rendering.
    noise = prm.get("data.label_noise")
    for v in noise:
        check_label_noise("data.label_noise", v)
    ens = prm.section(EnsembleParams)
    summary = collect(args.members, args.out, noise, list(ens.widths), list(ens.blocks),
                      ens.block_members, seeds_per_draw=ens.seeds_per_draw)
    print(f"collect: {summary['members']} members in {summary['configs']} configs -> {args.out}")


if __name__ == "__main__":
    run(main)
