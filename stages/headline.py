"""headline: the dozen numbers `dvc exp show` prints (metrics/headline.json), from the fits,
and the per-width curves behind them (metrics/width_curves/, for `dvc plots diff`)."""

import argparse

from _common import run

# Reads no params: everything it needs is in the fits (regress.estimator included).
PARAMS = ()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alignment", required=True, help="regress's metrics/alignment.json")
    ap.add_argument("--out", required=True, help="headline metrics (JSON)")
    ap.add_argument("--curves", required=True,
                    help="directory for the per-level width curves (CSV, DVC plots)")
    args = ap.parse_args()

    from biasvar.core.errors import InputError
    from biasvar.core.io import read_json, write_json
    from biasvar.report.headline import (
        headline,
        width_curve_tables,
        width_curves,
        write_width_tables,
    )

    # Everything is computed and checked before either output is touched; each output is
    # then replaced whole (DVC leaves them in place: `persist`), so a bad input leaves
    # the committed metrics/ exactly as they were.
    try:
        alignment = read_json(args.alignment)
        numbers = headline(alignment)
        curves = width_curves(alignment)
        tables = width_curve_tables(curves)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise InputError(f"{args.alignment}: not an alignment metrics file "
                         f"({e.__class__.__name__}: {e})") from e
    write_width_tables(tables, args.curves)
    write_json(args.out, numbers)
    print(f"headline: {sum(len(v) for v in numbers.values())} numbers -> {args.out}; "
          f"width curves of {len(curves)} levels -> {args.curves}")


if __name__ == "__main__":
    run(main)
