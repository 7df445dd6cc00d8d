"""The generic-path benchmark (bench/bench_generic.py): equal work, and its committed record.

The benchmark's ratios mean something only if its variants train the same members on
the same minibatches: the plain loop, the generic path and the MLP fast path are run
here for a few steps from the same initial weights and must give the same logits, and
the library variants must be what ``train_block`` trains. The committed Markdown
(``bench/results/generic.md``, included by the docs' performance page) must be what
``render_markdown`` makes of the committed JSON, and its ratios the JSON's numbers
divided.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import load_bench

from biasvar.core.config import RuntimeParams
from biasvar.data.splits import make_split
from biasvar.ensemble.config import TrainParams
from biasvar.ensemble.train import BlockSpec, train_block

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@pytest.fixture(scope="module")
def bench():
    """``bench/bench_generic.py`` as a module."""
    return load_bench("bench_generic")


def _data(bench, shape, members, n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    y = x.flatten(1)[:, :3].abs().argmax(1)  # learnable labels, 3 classes used of 10
    split = make_split("bootstrap", n, list(range(members)), seed=bench.SEED)
    draws = torch.as_tensor(np.stack([split.for_draw(m) for m in range(members)]))
    return bench.Data(x, y, draws, tuple(shape), 10, "test"), split


CASES = [
    ("cnn2d", (1, 8, 8), {}),
    ("resnet", (3, 8, 8), {"depth": 1, "stages": 2}),
    ("mlp", (40,), {"depth": 2, "residual": True}),
]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize(("arch", "shape", "extra"), CASES)
def test_plain_loop_and_library_paths_do_the_same_work(bench, arch, shape, extra, optimizer):
    """Same initial weights, same minibatches, same optimizer: the same logits after 4
    steps. Adam (the benchmark's) with a looser tolerance: its first steps can turn
    rounding noise in a near-zero gradient into an lr-sized move (test_generic.py)."""
    members, steps = 3, 4
    case = bench.Case("t", arch, width=4, data="test", batch=8, steps=steps,
                      lr=0.05 if optimizer == "sgd" else 0.01, optimizer=optimizer,
                      momentum=0.9, weight_decay=1e-4, **extra)
    tol = {"rtol": 1e-4, "atol": 1e-5 if optimizer == "sgd" else 1e-4}
    data, _ = _data(bench, shape, members)
    x = torch.randn(10, *shape, generator=torch.Generator().manual_seed(1))
    _, nets = bench.train_plain(case, data, members, steps)
    want = bench.plain_logits(nets, x)
    for variant in case.variants[:-1]:  # fast (the MLP only) and generic
        _, model = bench.train_library(case, data, members, steps, generic=variant == "generic")
        torch.testing.assert_close(bench.library_logits(model, x), want, **tol, msg=variant)
    untrained = bench.plain_logits(bench.train_plain(case, data, members, 0)[1], x)
    assert (want - untrained).abs().max() > 1e-2  # the steps moved the weights


def test_the_plain_loop_uses_the_blocks_adam(bench):
    case = bench.Case("t", "cnn2d", width=4, data="test", batch=8, steps=1, lr=3e-3,
                      weight_decay=1e-4)
    opt = bench.plain_optimizer(case, [torch.nn.Parameter(torch.zeros(2))])
    assert isinstance(opt, torch.optim.Adam)
    assert {k: opt.defaults[k] for k in ("lr", "betas", "eps", "weight_decay")} == {
        "lr": 3e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-4}


@pytest.mark.parametrize(("arch", "shape", "extra"), [CASES[0], CASES[2]])
def test_library_variants_are_what_train_block_trains(bench, arch, shape, extra):
    """cnn2d: the generic path; mlp: the hand-written fast path. Same final test logits."""
    members, steps = 2, 6
    case = bench.Case("t", arch, width=4, data="test", batch=8, steps=steps, lr=1e-2, **extra)
    data, split = _data(bench, shape, members)
    x_test = torch.randn(12, *shape, generator=torch.Generator().manual_seed(2))
    ds = SimpleNamespace(x_train=data.x.numpy(), y_train=data.y.numpy(), x_test=x_test.numpy(),
                         y_test=np.zeros(12, dtype=np.int64), n_train=len(data.y), n_classes=10)
    spec = BlockSpec(tuple(range(members)), tuple(range(members)), (0,) * members, case.width)
    r = train_block(ds, split, spec, case.model_params(),
                    TrainParams(optimizer="adam", lr=case.lr, momentum=0.9, weight_decay=0.0,
                                steps=steps, batch_size=case.batch, seed=bench.SEED,
                                log_every=steps),
                    RuntimeParams(device="cpu", threads=0, progress=False))
    _, model = bench.train_library(case, data, members, steps, generic=arch != "mlp")
    assert type(model).__name__ == ("StackedMLP" if arch == "mlp" else "VmapEnsemble")
    np.testing.assert_allclose(bench.library_logits(model, x_test).numpy(), r.test_logits,
                               rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the committed record
def _run() -> dict:
    return json.loads((RESULTS / "generic.json").read_text())


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_generic_markdown_is_rendered_from_the_committed_json(bench):
    """Regenerate with ``python bench/bench_generic.py --render bench/results/generic.json``."""
    assert (RESULTS / "generic.md").read_text() == bench.render_markdown(_run())
    # the README's block: the same ratio table, alone
    ratios = (RESULTS / "generic_ratios.md").read_text()
    assert ratios == bench.render_ratios(_run())
    assert (RESULTS / "generic.md").read_text().startswith(ratios.rstrip("\n"))


def test_generic_json_is_consistent():
    run = _run()
    for c in run["cases"]:
        assert len({len(s) for s in c["seconds"].values()} | {run["reps"]}) == 1, c["name"]
        for v, s in c["seconds"].items():
            assert c["member_steps_per_s"][v] == pytest.approx(
                c["members"] * c["steps"] / statistics.median(s)), (c["name"], v)
    chk = run["bench_train_check"]
    committed = json.loads((RESULTS / "bench.json").read_text())
    assert chk["committed"] == {k: committed["speedup"][k] for k in chk["committed"]}
    assert chk["committed_sgemm_peaks_gflops"] == committed["sgemm_peaks_gflops"]
    now = chk["now"]
    assert now["speedup"] == pytest.approx(now["plain_s_per_member"] / now["block_s_per_member"])
    base = run["baseline"]
    assert len(base["seconds"]["baseline"]) == len(base["seconds"]["now"]) > 1


def test_generic_markdown_ratios_are_the_jsons_numbers_divided(bench):
    run = _run()
    md = (RESULTS / "generic.md").read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()
            if line.startswith("| ") and "×" in line}
    for c in run["cases"]:
        row = rows[c["name"]]
        r = c["member_steps_per_s"]
        for a, b in (("generic", "plain"), ("fast", "plain"), ("fast", "generic")):
            if a not in r:
                continue
            # per repetition: a's member-steps/s over b's = b's seconds over a's
            per = [sb / sa for sa, sb in zip(c["seconds"][a], c["seconds"][b], strict=True)]
            assert (f"**{r[a] / r[b]:.2f}×** ({min(per):.2f}×–{max(per):.2f}×)") in row, (
                c["name"], a, b)
        for v, speed in r.items():
            work = c["members"] * c["steps"]
            assert (f"| {c['name']} | {bench.LABELS[v]} | {bench.speed(speed)} | "
                    f"{bench.speed(work / max(c['seconds'][v]))}–"
                    f"{bench.speed(work / min(c['seconds'][v]))} |") in md, (c["name"], v)
    flat = _flat(md)
    chk = run["bench_train_check"]
    change = chk["now"]["block_s_per_member"] / chk["committed"]["block_s_per_member"] - 1
    assert f"the block takes {100 * abs(change):.0f} % {'more' if change > 0 else 'less'}" \
        in flat
    # the verdict: block seconds now over then, medians of the alternating pairs
    then, now = run["baseline"]["seconds"]["baseline"], run["baseline"]["seconds"]["now"]
    med = statistics.median(now) / statistics.median(then)
    per = [n / t for t, n in zip(then, now, strict=True)]
    assert f"now ÷ then **{med:.2f}** ({min(per):.2f}–{max(per):.2f} in one pair): " + (
        "within 10 %" if med <= 1.10 else "**outside** 10 %") in flat


def test_render_divides_what_it_is_given(bench, tmp_path):
    """A made-up record with known quotients: 3 runs of 4 member-steps each."""
    case = {"name": "toy", "arch": "mlp", "width": 1, "depth": 1, "residual": False,
            "stages": 4, "data": "d", "batch": 1, "steps": 2, "lr": 0.1, "optimizer": "adam",
            "members": 2, "parameters_per_member": 3,
            "seconds": {"fast": [1.0, 1.0, 2.0], "generic": [2.0, 4.0, 4.0],
                        "plain": [8.0, 8.0, 8.0]}}
    case["member_steps_per_s"] = {v: 4 / statistics.median(s)
                                  for v, s in case["seconds"].items()}
    res = {"machine": "m", "cores": 2, "torch": "t", "threads": 2, "reps": 3,
           "cases": [case], "sgemm_peaks_gflops": [120.0, 100.4]}
    md = bench.render_markdown(res)
    assert "measured 2 times in the run, was 100–120 GFLOP/s" in _flat(md)
    # generic / plain: medians 1 and 0.5 member-steps/s; per run 4, 2, 2
    assert "| toy | **2.00×** (2.00×–4.00×) | **8.00×** (4.00×–8.00×) | **4.00×** " \
           "(2.00×–4.00×) |" in md
    (tmp_path / "g.json").write_text(json.dumps(res))
    assert bench.write_markdown(tmp_path / "g.json").read_text() == md
