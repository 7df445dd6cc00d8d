"""Stacked networks of the simplicity-bias studies: input versions, members, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biasvar.studies import nets


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 40)) @ rng.normal(size=(40, 40)) * 0.3  # correlated inputs
    y = rng.integers(0, 10, 300)
    return x.astype(np.float32), y


def test_shuffled_permutes_coordinates_once_for_all_examples(xy):
    x, _ = xy
    a, b = nets.input_version(x[:200], x[200:], "shuffled", seed=3)
    perm = [int(np.flatnonzero(np.all(np.isclose(x[:200], a[:, [j]]), axis=0))[0])
            for j in range(40)]
    assert sorted(perm) == list(range(40)) and perm != list(range(40))
    np.testing.assert_allclose(b, x[200:, perm])  # the test inputs get the same permutation


def test_whitened_train_inputs_have_identity_covariance(xy):
    x, _ = xy
    a, b = nets.input_version(x[:200], x[200:], "whitened", seed=0)
    np.testing.assert_allclose(a.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(np.cov(a, rowvar=False, bias=True), np.eye(40), atol=1e-4)
    assert b.shape == (100, 40)


@pytest.mark.parametrize("activation", nets.ACTIVATIONS)
def test_stacked_mlp_matches_a_plain_forward(activation, xy):
    x, _ = xy
    net = nets.build("mlp", 3, 2, 8, activation, 1.0, seed=0, purpose="t")
    act = {"relu": torch.relu, "tanh": torch.tanh, "linear": lambda h: h}[activation]
    xb = torch.as_tensor(x[:20])
    with torch.no_grad():
        out = net(xb.expand(3, -1, -1))
        for m in range(3):
            h = xb
            for layer in net.hidden:
                h = act(h @ layer.weight[m].T + layer.bias[m])
            torch.testing.assert_close(out[m], h @ net.out.weight[m].T + net.out.bias[m])


def test_init_scale_multiplies_the_default_initialization():
    a = nets.build("mlp", 2, 3, 8, "relu", 1.0, seed=5, purpose="t")
    b = nets.build("mlp", 2, 3, 8, "relu", 0.25, seed=5, purpose="t")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pb, 0.25 * pa)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_member_trains_the_same_alone_or_in_an_ensemble(optimizer, xy):
    """Members share the minibatches and own their initialization and gradient, so member
    0 of a 3-member ensemble follows the same trajectory as a 1-member ensemble."""
    x, y = xy
    kw = dict(optimizer=optimizer, lr=0.01, steps=30, batch_size=50, seed=1, purpose="t",
              log_every=30)
    one = nets.build("mlp", 1, 2, 16, "tanh", 1.0, seed=2, purpose="m")
    three = nets.build("mlp", 3, 2, 16, "tanh", 1.0, seed=2, purpose="m")
    nets.train(one, x, y, **kw)
    nets.train(three, x, y, **kw)
    np.testing.assert_allclose(nets.predict(three, x)[0], nets.predict(one, x)[0],
                               rtol=1e-4, atol=1e-5)


def test_training_lowers_the_loss_and_logs_at_the_declared_steps(xy):
    x, y = xy
    net = nets.build("cnn", 2, 1, 4, "relu", 1.0, seed=0, purpose="t")
    logged = []
    first = nets.predict(net, x)
    loss = nets.train(net, x, y, optimizer="adam", lr=0.01, steps=25, batch_size=300, seed=0,
                      purpose="t", log_every=10, on_log=logged.append)
    assert logged == [0, 10, 20, 25]
    ce0 = torch.nn.functional.cross_entropy(torch.as_tensor(first[0]), torch.as_tensor(y))
    assert loss < float(ce0)
    assert nets.embed(net, x).shape == (2, 300, 4 * 5)  # cnn features: width x 5 positions
