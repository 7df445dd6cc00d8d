"""``biasvar``: the console script (``pip install`` puts it on PATH).

    biasvar analyze ENSEMBLE --out DIR [--bootstrap N] [--ci LEVEL]
    biasvar launch [--executor local|slurm] [-j N] [-S OVERRIDE] [--name EXP] [targets ...]

``analyze`` decomposes an ensemble you bring, with no training and no DVC:
``ENSEMBLE`` is an ``.npz`` (``logits`` or ``probs`` of shape (members, examples,
classes), ``labels``, optional ``draw`` and ``seed``; several configs as
``logits__<name>``), a logits ``.parquet`` of this project, or a directory of
per-member ``.npy`` logits with ``labels.npy``. ``DIR`` receives the tables, the
figure and a generated README (``biasvar.report.analyze``); it is replaced whole
once everything is computed. A bad file is one ``error:`` line naming the file, the
array and what was expected (exit code 2).

``launch`` runs the pipeline with its out-of-date train blocks (and companion studies)
as a job array on submitit, local processes or SLURM (``biasvar.cli.launch``).
"""

from __future__ import annotations

import sys


def _parser():
    from biasvar.tools.cli import CliParser, int_in

    p = CliParser(prog="biasvar", description="Bias and variance of deep-model ensembles.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=CliParser)
    a = sub.add_parser("analyze", help="decompose an ensemble you bring (no training)",
                       description=__doc__.split("\n\n")[2])
    a.add_argument("ensemble", help=".npz, logits .parquet, or a directory of per-member .npy")
    a.add_argument("--out", required=True, help="output folder (replaced whole)")
    a.add_argument("--bootstrap", type=int_in(0, 100_000), default=200,
                   help="bootstrap replicates over examples for the alignment intervals "
                        "(0: none; default 200)")
    a.add_argument("--ci", type=float, default=0.95, help="interval level (default 0.95)")
    from biasvar.cli.launch import add_parser

    add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``biasvar`` console script."""
    from biasvar.tools.cli import run_cli

    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)

    if args.command == "launch":
        return _launch(args)

    def run() -> int:
        from biasvar.analysis.imported import load_ensemble
        from biasvar.core.errors import InputError
        from biasvar.report.analyze import analyze

        if not 0.5 <= args.ci < 1:
            raise InputError(f"--ci {args.ci} is not allowed: a level in [0.5, 1)")
        configs = load_ensemble(args.ensemble)
        numbers = analyze(configs, args.out, n_boot=args.bootstrap, ci=args.ci)
        for name, m in numbers["configs"].items():
            print(f"{name}: {m['members']} members ({m['draws']} draws x {m['seeds']} seeds), "
                  f"{m['examples']} examples, {m['classes']} classes")
        print(f"-> {args.out}/README.md")
        return 0

    return run_cli(run, interrupted=f"{args.out} was not changed")


def _launch(args) -> int:
    from pathlib import Path

    from biasvar.cli.launch import Options, launch
    from biasvar.tools.cli import run_cli

    opts = Options(executor=args.executor, jobs=args.jobs, max_parallel=args.max_parallel,
                   remote=args.remote, partition=args.partition,
                   cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task,
                   mem=args.mem, time=args.time, retries=args.retries,
                   work_dir=args.work_dir, targets=tuple(args.targets),
                   set_params=tuple(args.set_param), name=args.name,
                   provenance=args.provenance)
    command = "biasvar " + " ".join(sys.argv[1:])

    def run() -> int:
        result = launch(opts, Path.cwd(), progress=lambda line: print(line, flush=True),
                        command=command)
        print(f"launch: {len(result['pool'])} tasks, then {len(result['assembly'])} stages "
              f"in the assembly; logs in {result['work_dir']}")
        return 0

    return run_cli(run, interrupted="stages that finished keep their outputs")


if __name__ == "__main__":
    raise SystemExit(main())
