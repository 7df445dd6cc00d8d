"""headline: the dozen numbers `dvc exp show` prints (metrics/headline.json), from the fits."""

import argparse

from _common import run

# Reads no params: everything it needs is in the fits (regress.estimator included).
PARAMS = ()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alignment", required=True, help="regress's metrics/alignment.json")
    ap.add_argument("--out", required=True, help="headline metrics (JSON)")
    args = ap.parse_args()

    from biasvar.core.errors import InputError
    from biasvar.core.io import read_json, write_json
    from biasvar.report.headline import headline

    try:
        numbers = headline(read_json(args.alignment))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise InputError(f"{args.alignment}: not an alignment metrics file "
                         f"({e.__class__.__name__}: {e})") from e
    write_json(args.out, numbers)
    print(f"headline: {sum(len(v) for v in numbers.values())} numbers -> {args.out}")


if __name__ == "__main__":
    run(main)
