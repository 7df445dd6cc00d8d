"""Everything downstream of training works for any class count and input shape.

Synthetic blocks with C = 2, 3, 10 and 100 classes and non-MNIST-1D input shapes are
written exactly as the train stage writes them (``block_info`` + ``save_block``, as in
``test_faults.make_block``), then collected, decomposed, summarized, fitted (alignment,
alignment against ensemble size, the calibration intervention) and probed, checking the
decomposition identities per example and that the data's name, input shape and class
count travel into the logits file's metadata and on to the report's title.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biasvar.analysis.calibration_intervention import calibration_all
from biasvar.analysis.ensemble_size import ensemble_size_all
from biasvar.analysis.regress import regress_all
from biasvar.analysis.tables import decompose_all
from biasvar.core.schema import read_params
from biasvar.data.dataset import Dataset, add_label_noise
from biasvar.data.splits import in_bag_indices, load_split, make_split, save_split
from biasvar.ensemble.blocks import block_dir, block_info, save_block
from biasvar.ensemble.logits import check_identity, collect, config_file, read_config
from biasvar.ensemble.train import BlockResult, BlockSpec

NOISE, WIDTHS, BLOCKS = [0.0, 0.2], [4, 8], [0, 1]
BLOCK_SIZE, SPD = 4, 2  # 2 blocks x 4 members: 4 draws x 2 seeds (Neal's split defined)
N_TRAIN, N_TEST = 40, 30
PARAMS = {"model": {"arch": "mlp", "depth": 2, "residual": False},
          "train": {"optimizer": "adam", "lr": 0.01, "steps": 2, "seed": 0},
          "split_method": "bootstrap"}
# (classes, one input's shape, provider name): binary, odd, MNIST-1D's and CIFAR-100's
CASES = [(2, (3, 5), "arrays"), (3, (7,), "arrays"), (10, (40,), "mnist1d"),
         (100, (3, 4, 4), "cifar100")]


def _dataset(p: float, n_classes: int, shape: tuple[int, ...], name: str) -> Dataset:
    rng = np.random.default_rng(n_classes)
    y_clean = rng.integers(0, n_classes, N_TRAIN)
    y, noisy = add_label_noise(y_clean, p, 0, n_classes)
    return Dataset(x_train=rng.normal(size=(N_TRAIN, *shape)), y_train=y, y_train_clean=y_clean,
                   noisy=noisy, x_test=rng.normal(size=(N_TEST, *shape)),
                   y_test=rng.integers(0, n_classes, N_TEST), label_noise=p,
                   n_classes=n_classes, name=name)


def make_tree(root: Path, n_classes: int, shape: tuple[int, ...], name: str) -> dict:
    """Write every (noise, width, block) block; logits lean towards the label so that
    some examples are correct (an alignment fit needs them). Returns ``{p: Dataset}``."""
    datasets = {p: _dataset(p, n_classes, shape, name) for p in NOISE}
    for b in BLOCKS:
        members = list(range(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE))
        draws = [m // SPD for m in members]
        split = make_split("bootstrap", N_TRAIN, draws, 0)
        split_file = root / "splits" / f"block-{b}.npz"
        save_split(split, split_file)
        for p, ds in datasets.items():
            for w in WIDTHS:
                rng = np.random.default_rng([int(p * 100), w, b, n_classes])

                def logits(y, n, rng=rng):
                    # (members, examples, classes), the label's logit raised by 2
                    z = rng.normal(size=(BLOCK_SIZE, n, n_classes))
                    z[:, np.arange(n), y] += 2.0
                    return z.astype(np.float32)

                spec = BlockSpec(tuple(members), tuple(draws), tuple(m % SPD for m in members),
                                 w)
                curves = {"step": np.array([1, 2])}
                curves.update({k: rng.random((2, len(members))) for k in (
                    "train_loss", "train_accuracy", "test_loss", "test_accuracy", "in_bag_loss",
                    "in_bag_error", "oob_loss", "oob_error")})
                result = BlockResult(
                    spec=spec, test_logits=logits(ds.y_test, N_TEST),
                    train_logits=logits(ds.y_train, N_TRAIN), curves=curves,
                    metrics=[{"member": m, "draw": d, "seed": m % SPD, "test_accuracy": 0.5}
                             for m, d in zip(members, draws, strict=True)],
                    states=[{} for _ in members], seconds=0.0, device="cpu")
                info = block_info(p, w, b, params=PARAMS,
                                  layout={"block_size": BLOCK_SIZE, "seeds_per_draw": SPD},
                                  dataset=ds, split=split, split_file=split_file)
                save_block(result, block_dir(root / "members", p, w, b), info, ds.y_test,
                           ds.y_train)
    return datasets


@pytest.fixture(scope="module", params=CASES, ids=[f"C{c[0]}" for c in CASES])
def collected(request, tmp_path_factory):
    n_classes, shape, name = request.param
    root = tmp_path_factory.mktemp(f"classes-{n_classes}")
    datasets = make_tree(root, n_classes, shape, name)
    collect(root / "members", root / "collected", NOISE, WIDTHS, BLOCKS,
            lambda b: list(range(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE)), seeds_per_draw=SPD,
            datasets=datasets,
            splits={b: load_split(root / "splits" / f"block-{b}.npz") for b in BLOCKS})
    return root, datasets, n_classes, shape, name


def test_logits_metadata_records_the_data(collected):
    root, datasets, n_classes, shape, name = collected
    logits = root / "collected" / "logits"
    c = read_config(logits, 0.2, 8, "test")
    assert c.logits.shape == (BLOCK_SIZE * len(BLOCKS), N_TEST, n_classes)
    meta = read_params(config_file(logits, 0.2, 8))
    assert meta["dataset"]["name"] == name
    assert meta["dataset"]["input_shape"] == list(shape)
    assert meta["dataset"]["n_classes"] == n_classes
    assert meta["model"]["arch"] == "mlp"
    # the reading stages' check passes on the dataset the file was collected from
    check_identity(logits, 0.2, 8, blocks=BLOCKS, dataset=datasets[0.2])


def test_decomposition_identities_and_fits(collected):
    root, datasets, n_classes, _, _ = collected
    logits = root / "collected" / "logits"
    in_bag = in_bag_indices(sorted((root / "splits").glob("block-*.npz")))
    examples, summary, rel = decompose_all(logits, {p: d.noisy for p, d in datasets.items()},
                                           NOISE, WIDTHS, True, 0.95, 15, in_bag)
    ex = examples.to_pandas()
    assert len(ex) == len(NOISE) * len(WIDTHS) * (N_TEST + N_TRAIN)
    # per example: bias² + var = loss (MSE, plug-in), CE bias + var = loss, and Neal's
    # optimization + sampling parts sum to the variance (law of total variance)
    np.testing.assert_allclose(ex.mse_bias2 + ex.mse_var, ex.mse_loss, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex.ce_bias + ex.ce_var, ex.ce_loss, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex.var_optimization + ex.var_sampling, ex.mse_var,
                               rtol=1e-9, atol=1e-12)
    # the MSE loss of a probability vector is at most 2, whatever C
    assert (ex.mse_loss <= 2.0 + 1e-12).all() and (ex.mse_bias2 >= 0).all()
    # against the plain formulas on the dense array, for one config
    c = read_config(logits, 0.0, 4, "test")
    z = c.logits.astype(np.float64)
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)  # (K, N, C)
    onehot = np.eye(n_classes)[c.labels]  # (N, C)
    pbar = probs.mean(0)
    one = ex[(ex.label_noise == 0.0) & (ex.width == 4) & (ex.partition == "test")]
    np.testing.assert_allclose(one.mse_bias2, ((pbar - onehot) ** 2).sum(-1), rtol=1e-6)
    np.testing.assert_allclose(one.mse_var, ((probs - pbar) ** 2).sum(-1).mean(0), rtol=1e-6)
    np.testing.assert_array_equal(one.ensemble_prediction, pbar.argmax(-1))
    sm = summary.to_pandas()
    assert sm.label_noise.nunique() == len(NOISE) and len(rel.to_pandas())
    fits, metrics = regress_all(examples, summary, "plugin", 20, 0, 0.95)
    f = fits.to_pandas()
    assert len(f) == len(NOISE) * len(WIDTHS) * 2 and f.slope.notna().all()
    assert len(metrics) == len(NOISE)


def test_alignment_size_and_calibration(collected):
    root, _, _, _, _ = collected
    logits = root / "collected" / "logits"
    per_size, extrap, metrics = ensemble_size_all(logits, NOISE, WIDTHS, 10, 0, 0.95)
    assert len(per_size) and set(per_size.width) == set(WIDTHS) and metrics
    in_bag = in_bag_indices(sorted((root / "splits").glob("block-*.npz")))
    table, bins, metrics = calibration_all(logits, NOISE, WIDTHS, in_bag, 15, 10, 0, 0.95)
    assert len(table) == len(NOISE) * len(WIDTHS)
    assert np.isfinite(table.filter(like="temperature").to_numpy(float)).all()
    assert isinstance(bins, pd.DataFrame) and len(bins)


# ------------------------------------------------------------------ probe: any family, any C
@pytest.mark.parametrize("arch,module", [("cnn2d", None), ("resnet", None),
                                         ("module", "biasvar.ensemble.examples:mlp")])
def test_probe_reads_any_family_at_three_classes(tmp_path, arch, module):
    """The probe rebuilds members with the class count their block records (3 here, not
    MNIST-1D's 10) and embeds image inputs; a user's module without ``features`` is read at
    its last ``nn.Linear``'s input."""
    from biasvar.core.config import RuntimeParams
    from biasvar.ensemble.config import ModelParams, TrainParams
    from biasvar.ensemble.train import train_block
    from biasvar.studies.effective_rank import probe_block

    ds = _dataset(0.0, 3, (1, 6, 6), "arrays")
    split = make_split("bootstrap", ds.n_train, [0], seed=0)
    model = ModelParams(arch=arch, depth=1, residual=False, stages=1, module=module)
    cfg = TrainParams(optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0, steps=3,
                      batch_size=10, seed=0, log_every=3)
    spec = BlockSpec((0, 1), (0, 0), (0, 1), 4)
    result = train_block(ds, split, spec, model, cfg,
                         RuntimeParams(device="cpu", threads=1, progress=False))
    info = block_info(0.0, 4, 0, params={"model": model.model_dump(), "train": {},
                                         "split_method": "bootstrap"},
                      layout={"block_size": 2, "seeds_per_draw": 2}, dataset=ds, split=split)
    out = block_dir(tmp_path, 0.0, 4, 0)
    save_block(result, out, info, ds.y_test, ds.y_train)
    rows = probe_block(out, ds.x_test, center=False)
    assert [r["member"] for r in rows] == [0, 1]
    assert all(r["n_examples"] == N_TEST and r["feature_dim"] > 0 for r in rows)
    assert all(np.isfinite(r["erank"]) for r in rows)


def test_probe_refuses_a_module_without_embeddings():
    import torch

    from biasvar.core.errors import InputError
    from biasvar.studies.effective_rank import embeddings

    conv = torch.nn.Sequential(torch.nn.Conv1d(1, 3, 3), torch.nn.Flatten())  # no head
    with pytest.raises(InputError, match="no features\\(\\) method and no nn.Linear") as e:
        embeddings(conv, np.zeros((4, 1, 8), np.float32), "members.json")
    assert "\n" not in str(e.value)
    # a torchvision-style submodule named ``features`` is not taken for the embedding
    net = torch.nn.Module()
    net.features = torch.nn.Conv1d(1, 2, 3)
    net.head = torch.nn.Linear(12, 5)
    net.forward = lambda x: net.head(net.features(x).flatten(1))
    assert embeddings(net, np.zeros((4, 1, 8), np.float32)).shape == (4, 12)


def test_report_title_names_the_data():
    from biasvar.report.document import dataset_title

    assert dataset_title({"name": "mnist1d", "input_shape": [40], "n_classes": 10}) == "MNIST-1D"
    assert (dataset_title({"name": "digits", "input_shape": [1, 8, 8], "n_classes": 10})
            == "digits (inputs 1×8×8, 10 classes)")
    assert (dataset_title({"name": "arrays", "input_shape": [3, 5], "n_classes": 3,
                           "source": "/some/where/mine.npz"})
            == "mine.npz (inputs 3×5, 3 classes)")
    assert dataset_title({"name": "cifar100", "input_shape": [3, 32, 32],
                          "n_classes": 100}).startswith("CIFAR-100 (inputs 3×32×32, 100")
