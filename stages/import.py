"""import: validate a user's ensemble file into the import source folder
(data/sources/import), which decompose → … → plot read under `source: import`."""

import argparse

from _common import run

PARAMS = ("import",)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--path", required=True, help="the ensemble file (import.path)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from biasvar.analysis.config import ImportParams
    from biasvar.analysis.imported import import_source
    from biasvar.core.config import load_declared

    cfg = load_declared(PARAMS).section(ImportParams)
    summary = import_source(args.path, args.out, label_noise=cfg.label_noise, width=cfg.width)
    print(f"import: {summary['members']} members in {summary['configs']} configs from "
          f"{args.path} -> {args.out}")


if __name__ == "__main__":
    run(main)
