"""Training a block: block-size invariance, learning, in-bag/out-of-bag scores, NaN detection.

(Faults, e.g. a member that diverges on its last step, are in test_faults.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biasvar.core.config import RuntimeParams
from biasvar.core.errors import NonFiniteLossError
from biasvar.data.splits import make_split
from biasvar.ensemble.config import ModelParams, TrainParams
from biasvar.ensemble.models import reference_model
from biasvar.ensemble.train import BlockSpec, train_block

RUNTIME = RuntimeParams(device="cpu", threads=0, progress=False)


def _spec(members, spd, width):
    return BlockSpec(tuple(members), tuple(m // spd for m in members),
                     tuple(m % spd for m in members), width)


def _train(ds, members, arch="mlp", steps=40, lr=1e-2, width=16, spd=2, optimizer="adam",
           batch=50, autograd=False, checkpoints=0):
    split = make_split("bootstrap", ds.n_train, sorted({m // spd for m in members}), seed=0)
    cfg = TrainParams(optimizer=optimizer, lr=lr, momentum=0.9, weight_decay=1e-4, steps=steps,
                      batch_size=batch, seed=0, log_every=max(1, steps // 2),
                      checkpoints=checkpoints)
    return train_block(ds, split, _spec(members, spd, width),
                       ModelParams(arch=arch, depth=2, residual=True), cfg, RUNTIME,
                       autograd=autograd)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_member_result_does_not_depend_on_block_size(small_dataset, arch):
    block4 = _train(small_dataset, [4, 5, 6, 7], arch=arch)
    alone = _train(small_dataset, [6], arch=arch)
    np.testing.assert_allclose(alone.test_logits[0], block4.test_logits[2], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(alone.train_logits[0], block4.train_logits[2], rtol=1e-4,
                               atol=1e-4)
    # and members really differ from each other
    assert np.abs(block4.test_logits[0] - block4.test_logits[1]).max() > 1e-2
    # in-bag / out-of-bag scores (metrics and curves) do not depend on the block either
    for k in ("in_bag_loss", "in_bag_error", "oob_loss", "oob_error"):
        assert alone.metrics[0][k] == pytest.approx(block4.metrics[2][k], rel=1e-4, abs=1e-4)
        np.testing.assert_allclose(alone.curves[k][:, 0], block4.curves[k][:, 2], rtol=1e-4,
                                   atol=1e-4)
    assert alone.metrics[0]["n_in_bag"] == block4.metrics[2]["n_in_bag"]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_hand_backward_trains_as_autograd_does(small_dataset, optimizer):
    """The MLP's hand-written backward gives the autograd block up to float rounding."""
    hand = _train(small_dataset, [0, 1, 2], steps=30, optimizer=optimizer)
    auto = _train(small_dataset, [0, 1, 2], steps=30, optimizer=optimizer, autograd=True)
    np.testing.assert_allclose(hand.test_logits, auto.test_logits, rtol=1e-4, atol=1e-4)
    for k in ("train_loss", "in_bag_error", "oob_loss"):
        np.testing.assert_allclose(hand.curves[k], auto.curves[k], rtol=1e-4, atol=1e-4)
    for name, p in hand.states[2].items():
        torch.testing.assert_close(p, auto.states[2][name], rtol=1e-4, atol=1e-5)
    # and 30 steps moved the members far beyond that tolerance
    assert np.abs(hand.curves["train_loss"][-1] - hand.curves["train_loss"][0]).min() > 1e-2


def _numpy_scores(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-example CE and error, computed independently of torch: (N, C), (N,)."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y], (logits.argmax(axis=1) != y).astype(float)


@pytest.mark.parametrize("method", ["bootstrap", "disjoint", "full", "half"])
def test_in_bag_and_out_of_bag_scores(small_dataset, method):
    ds, members, spd = small_dataset, [0, 1, 2, 3], 2
    split = make_split(method, ds.n_train, [0, 1], seed=3, parts=2)
    cfg = TrainParams(optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0, steps=30,
                      batch_size=50, seed=0, log_every=10)
    r = train_block(ds, split, _spec(members, spd, 16),
                    ModelParams(arch="mlp", depth=1, residual=False), cfg, RUNTIME)
    for i, m in enumerate(r.metrics):
        draw = split.for_draw(m["draw"])
        in_bag = np.zeros(ds.n_train, bool)
        in_bag[draw] = True  # each distinct example once, whatever its multiplicity
        assert m["n_in_bag"] == len(np.unique(draw)) and m["n_oob"] == ds.n_train - m["n_in_bag"]
        ce, err = _numpy_scores(r.train_logits[i], ds.y_train)
        assert m["in_bag_loss"] == pytest.approx(ce[in_bag].mean(), rel=1e-5)
        assert m["in_bag_error"] == pytest.approx(err[in_bag].mean(), abs=1e-6)
        assert m["train_loss"] == pytest.approx(ce.mean(), rel=1e-5)  # whole partition
        if method == "full":
            assert m["n_oob"] == 0 and np.isnan(m["oob_loss"]) and np.isnan(m["oob_error"])
        else:
            assert m["oob_loss"] == pytest.approx(ce[~in_bag].mean(), rel=1e-5)
            assert m["oob_error"] == pytest.approx(err[~in_bag].mean(), abs=1e-6)
        # the curves' last row is the final evaluation
        for k in ("in_bag_loss", "in_bag_error", "oob_loss", "oob_error", "test_loss"):
            np.testing.assert_allclose(r.curves[k][-1, i], m[k], rtol=1e-6)
    if method == "bootstrap":  # ~63 % distinct examples
        assert 0.55 < r.metrics[0]["n_in_bag"] / ds.n_train < 0.7
    if method in ("disjoint", "half"):
        assert r.metrics[0]["n_in_bag"] == ds.n_train // 2
    assert r.curves["step"].tolist() == [10, 20, 30]
    assert r.curves["in_bag_error"].shape == (3, 4)


def test_in_bag_error_reaches_zero_when_members_interpolate(clean_dataset):
    """Wide members fit their own draw; their out-of-bag error stays far from zero."""
    split = make_split("bootstrap", clean_dataset.n_train, [0], seed=0)
    cfg = TrainParams(optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0, steps=200,
                      batch_size=100, seed=0, log_every=100)
    r = train_block(clean_dataset, split, _spec([0, 1], 2, 128),
                    ModelParams(arch="mlp", depth=2, residual=False), cfg, RUNTIME)
    for m in r.metrics:
        assert m["in_bag_error"] == 0.0 and m["oob_error"] > 0.2
        assert m["train_accuracy"] < 0.95  # the whole partition is mostly out-of-bag errors


def test_block_learns(clean_dataset):
    r = _train(clean_dataset, list(range(4)), steps=300, width=32)
    test = np.array([m["test_accuracy"] for m in r.metrics])
    train = np.array([m["train_accuracy"] for m in r.metrics])
    # chance is 0.1; 800 examples (bootstrap: ~500 distinct) overfit fast, so
    # test accuracy is modest while training accuracy is high.
    assert test.min() > 0.25 and train.min() > 0.6
    curve = r.curves["train_loss"]  # (logs, members)
    assert np.all(curve[-1] < curve[0])


def test_outputs_are_consistent(small_dataset):
    r = _train(small_dataset, [0, 1], steps=20)
    assert r.test_logits.shape == (2, small_dataset.n_test, 10)
    assert r.train_logits.shape == (2, small_dataset.n_train, 10)
    assert r.test_logits.dtype == np.float32
    # the checkpoint reproduces the stored logits through the plain reference module
    ref = reference_model("mlp", 16, 2, True)
    ref.load_state_dict(r.states[1])
    with torch.no_grad():
        out = ref(torch.as_tensor(small_dataset.x_test, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, r.test_logits[1], rtol=1e-5, atol=1e-5)
    acc = (r.test_logits[1].argmax(-1) == small_dataset.y_test).mean()
    assert r.metrics[1]["test_accuracy"] == pytest.approx(acc)
    assert [m["draw"] for m in r.metrics] == [0, 0] and [m["seed"] for m in r.metrics] == [0, 1]


def test_full_batch_sgd_runs(small_dataset):
    split = make_split("full", small_dataset.n_train, [0], seed=0)
    cfg = TrainParams(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.0, steps=30,
                      batch_size=None, seed=0, log_every=10)
    model = ModelParams(arch="mlp", depth=1, residual=False)
    r = train_block(small_dataset, split, _spec([0, 1], 2, 8), model, cfg, RUNTIME)
    assert np.isfinite(r.test_logits).all()
    # full batch, same draw: the two seeds differ only by initialization
    assert not np.allclose(r.test_logits[0], r.test_logits[1])


def test_nonfinite_loss_names_member_and_step(small_dataset):
    with pytest.raises(NonFiniteLossError, match=r"member \d+: training loss became .* at step"):
        _train(small_dataset, [2, 3], lr=1e12, steps=50, optimizer="sgd")


# ---------------------------------------------------------------- the one training loop
def _stacked(members=3, width=8, seed=0):
    from biasvar.core.rng import torch_generator
    from biasvar.ensemble.models import init_members, stacked_model

    model = stacked_model("mlp", members, width, 2, False, (6,), 4)
    init_members(model, [torch_generator(seed, "init", m) for m in range(members)])
    return model


def test_fit_members_shared_batches_equal_the_same_batch_per_member():
    """The studies' protocol (one (B,) minibatch every member sees) is the ensemble
    protocol with every member given that batch: same loop, same trajectories."""
    from biasvar.ensemble.train import fit_members

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 6, generator=g), torch.randint(0, 4, (40,), generator=g)
    order = [torch.randperm(40, generator=g)[:10] for _ in range(12)]
    a, b = _stacked(), _stacked()
    fit_members(a, x, y, lambda step: order[step - 1], 12, "sgd", 0.1, 0.9)
    fit_members(b, x, y, lambda step: order[step - 1].expand(3, -1), 12, "sgd", 0.1, 0.9)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    assert not torch.equal(a.out.weight[0], _stacked().out.weight[0])  # it did train


def test_fit_members_logs_running_means_and_names_the_diverging_member():
    from biasvar.ensemble.train import fit_members

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 6, generator=g), torch.randint(0, 4, (40,), generator=g)
    model = _stacked()
    logged = []
    fit_members(model, x, y, lambda step: torch.arange(10), 7, "adam", 0.01, log_every=3,
                on_log=lambda s, loss, acc: logged.append((s, loss.clone(), acc.clone())),
                log_start=True)
    assert [s for s, _, _ in logged] == [0, 3, 6, 7]
    assert torch.isnan(logged[0][1]).all() and logged[1][1].shape == (3,)
    assert ((logged[1][2] >= 0) & (logged[1][2] <= 1)).all()
    with torch.no_grad():
        model.hidden[0].weight[1].fill_(float("nan"))  # member 1 diverges at once
    with pytest.raises(NonFiniteLossError, match="member 11: .* at step 1$"):
        fit_members(model, x, y, lambda step: torch.arange(10), 4, "adam", 0.01,
                    members=(10, 11, 12))


# ---------------------------------------------------------------- checkpoints (dynamics)
def test_checkpoint_steps_are_log_spaced_distinct_and_end_at_the_last_step():
    from biasvar.ensemble.config import checkpoint_steps

    s = checkpoint_steps(4000, 8)
    assert s == (8, 19, 47, 115, 279, 678, 1646, 4000)
    ratios = np.diff(np.log(s))
    assert np.ptp(ratios) < 0.05  # evenly spaced in log(step), up to rounding
    assert checkpoint_steps(20000, 12)[0] == 40 and checkpoint_steps(20000, 12)[-1] == 20000
    assert checkpoint_steps(4000, 0) == () and checkpoint_steps(4000, 1) == (4000,)
    small = checkpoint_steps(5, 8)  # fewer steps than checkpoints: each step once
    assert small == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_checkpoint_logits_equal_a_member_stopped_at_that_step(small_dataset, arch):
    """The logits a block keeps at checkpoint step s are exactly those of the same members
    trained separately for s steps: keeping them draws from no random stream and does not
    touch the optimizer; and keeping them changes nothing of the final result."""
    steps = 40
    long = _train(small_dataset, [0, 1, 2], arch=arch, steps=steps, checkpoints=5)
    plain = _train(small_dataset, [0, 1, 2], arch=arch, steps=steps)
    c = long.checkpoints
    assert c["step"].tolist() == [1, 3, 6, 16, 40]
    assert c["test"].shape == (5, 3, small_dataset.n_test, 10)
    np.testing.assert_array_equal(long.test_logits, plain.test_logits)
    np.testing.assert_array_equal(long.train_logits, plain.train_logits)
    np.testing.assert_array_equal(c["test"][-1], long.test_logits)  # last step: final
    for i, s in enumerate(c["step"][:-1].tolist()):
        # log_every = steps // 2 of the long run, so the short runs' curves differ; their
        # trajectories must not
        short = _train(small_dataset, [0, 1, 2], arch=arch, steps=s)
        np.testing.assert_array_equal(c["test"][i], short.test_logits)
        for k in ("test_accuracy", "in_bag_error", "oob_error"):
            np.testing.assert_array_equal(c[k][i], [m[k] for m in short.metrics])
    assert not np.array_equal(c["test"][0], c["test"][-1])  # they do move


def test_block_and_train_metrics_are_the_same_tuple():
    from biasvar.ensemble import blocks, train

    assert blocks.METRICS == train.METRICS


def test_a_block_without_checkpoints_stores_zero_steps(small_dataset, tmp_path):
    from biasvar.ensemble.blocks import load_dynamics, save_block

    r = _train(small_dataset, [0, 1], steps=4)
    save_block(r, tmp_path / "b", {"members": [{"member": 0}, {"member": 1}]},
               small_dataset.y_test, small_dataset.y_train)
    d = load_dynamics(tmp_path / "b", np.array([0, 1]), small_dataset.n_test, 10)
    assert d.steps.shape == (0,) and d.test.shape == (0, 2, small_dataset.n_test, 10)
