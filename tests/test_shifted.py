"""Members scored on shifted test sets: clean logits from checkpoints, generated shifts,
the identities at every severity, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.core.errors import InputError


@pytest.fixture(scope="module")
def block(small_dataset, tmp_path_factory):
    """A trained block of 4 members (2 draws x 2 seeds) saved as the train stage saves it."""
    from biasvar.core.config import RuntimeParams
    from biasvar.data.splits import make_split
    from biasvar.ensemble.blocks import block_info, save_block
    from biasvar.ensemble.config import ModelParams, TrainParams
    from biasvar.ensemble.train import BlockSpec, train_block

    ds = small_dataset
    split = make_split("bootstrap", ds.n_train, [0, 1], seed=0)
    model = ModelParams(arch="mlp", depth=2, residual=False)
    cfg = TrainParams(optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0, steps=60,
                      batch_size=50, seed=0, log_every=30)
    spec = BlockSpec((0, 1, 2, 3), (0, 0, 1, 1), (0, 1, 0, 1), 16)
    r = train_block(ds, split, spec, model, cfg, RuntimeParams(device="cpu", progress=False))
    out = tmp_path_factory.mktemp("members") / "noise-0.15" / "width-16" / "block-0"
    info = block_info(0.15, 16, 0, {"model": model.model_dump(), "train": cfg.model_dump(),
                                    "split_method": "bootstrap"},
                      {"block_size": 4, "seeds_per_draw": 2}, ds, split)
    save_block(r, out, info, ds.y_test, ds.y_train)
    return out, r


def test_clean_logits_from_checkpoints_equal_the_block_logits(block, small_dataset):
    from biasvar.analysis.shifted import members_logits

    path, r = block
    draws, (clean,) = members_logits([path], [small_dataset.x_test])
    assert draws.tolist() == [0, 0, 1, 1]
    # the reference model sums in another order than the stacked twin
    np.testing.assert_allclose(clean, r.test_logits, rtol=1e-5, atol=1e-5)


def test_every_identity_holds_at_every_severity(block, small_dataset):
    from biasvar.analysis.shifted import shift_config, shifted_inputs

    path, _ = block
    ds = small_dataset
    inputs = {("noise", s): shifted_inputs("mnist1d", ds.x_test, ds.y_test, "noise", s,
                                           num_samples=1000, train_split=0.8, data_seed=42,
                                           seed=0) for s in (0, 1, 3)}
    np.testing.assert_array_equal(inputs[("noise", 0)], ds.x_test.astype(np.float32))
    summary, fits, examples = shift_config([path], ds.y_test, inputs, 0.95, 15, 100, 0)
    by = {}
    for r in summary:
        by.setdefault(r["severity"], {})[r["quantity"]] = r["value"]
    assert sorted(by) == [0, 1, 3]
    for v in by.values():
        assert v["mse_bias2"] + v["mse_var"] == pytest.approx(v["mse_loss"], rel=1e-12)
        assert v["ce_bias"] + v["ce_var"] == pytest.approx(v["ce_loss"], rel=1e-12)
        assert v["var_optimization"] + v["var_sampling"] == pytest.approx(v["mse_var"])
    assert by[3]["member_error"] > by[0]["member_error"]  # x 8 noise hurts
    assert [f["severity"] for f in fits] == [0, 1, 3]
    # per-example terms for the clean set and the strongest severity only
    assert sorted({int(e.severity.iloc[0]) for e in examples}) == [0, 3]
    e3 = examples[-1]
    assert np.allclose(e3.bias2.mean(), by[3]["mse_bias2"])


def test_a_dataset_of_other_data_params_is_refused(small_dataset):
    from biasvar.analysis.shifted import shifted_inputs

    ds = small_dataset
    with pytest.raises(InputError, match="data/generated/x.npz: its test set is not MNIST-1D's"):
        shifted_inputs("mnist1d", ds.x_test, ds.y_test, "noise", 1, num_samples=1000,
                       train_split=0.8, data_seed=7, seed=0, where="data/generated/x.npz")


def test_image_corruptions_need_images_in_the_unit_range(small_dataset):
    from biasvar.analysis.shifted import shifted_inputs

    kw = {"num_samples": None, "train_split": 0.5, "data_seed": 0, "seed": 0, "where": "d.npz"}
    x = np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32)
    out = shifted_inputs("digits", x, np.zeros(5), "blur", 2, **kw)
    assert out.shape == x.shape and out.dtype == np.float32 and not np.array_equal(out, x)
    with pytest.raises(InputError, match="d.npz: shift kind 'blur' corrupts images"):
        shifted_inputs("mnist1d", small_dataset.x_test, small_dataset.y_test, "blur", 1, **kw)
    with pytest.raises(InputError, match="shift kind 'noise' shifts MNIST-1D, not digits"):
        shifted_inputs("digits", x, np.zeros(5), "noise", 1, **kw)


def test_scatter_numbers_count_saturated_examples_and_rank_correlation():
    import pandas as pd

    from biasvar.report.shift import alignment_words, scatter_numbers

    b = np.array([1e-3, 1e-2, 1e-1, 1e-60, 0.5])
    v = np.array([2e-3, 1e-2, 3e-1, 1e-50, 0.4])  # ranks: 1 2 4 0 3 vs 1 2 4 0 3 -> rho 1
    rows = []
    for sev, var in ((0, v), (3, v[::-1].copy())):
        rows.append(pd.DataFrame({"label_noise": 0.0, "width": 8, "kind": "noise",
                                  "severity": sev, "example": range(5), "correct": "True",
                                  "bias2": b, "var": var}))
    wrong = rows[0].assign(width=4, correct="False")
    got = scatter_numbers(pd.concat([*rows, wrong]))
    sc = got["noise-0"]["noise"]
    assert sc["width"] == 8 and sc["severity"] == [0, 3] and sc["n"] == [5, 5]
    assert sc["spearman"][0] == pytest.approx(1.0)
    assert sc["saturated"] == [1, 2]  # sev 3: bias² 1e-60 and, reversed, var 1e-50
    curves = {"noise-0": {"width-8": {"noise": {
        "severity": [0, 3], "slope": [0.9, 0.95], "slope_ci": [[0.8, 1.0], [0.4, 1.0]]}}}}
    text = alignment_words(curves, got)
    assert "slope 0.90 [0.80, 1.00] clean, 0.95 [0.40, 1.00] at severity 3" in text
    assert "Spearman ρ 1.00 →" in text and "1 → 2 of the correctly classified" in text
