"""Model families sized from the data; stacked members against plain torch.nn references."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch

from biasvar.core.rng import torch_generator
from biasvar.ensemble.models import (
    init_members,
    member_state,
    n_parameters,
    reference_model,
    stacked_model,
)


def test_parameter_counts_match_mnist1d_reference_models():
    assert n_parameters("mlp", 100, depth=2, residual=True) == 15_210
    assert n_parameters("cnn1d", 25) == 5_210
    assert n_parameters("cnn", 25) == 5_210  # the earlier name of cnn1d, an alias
    assert n_parameters("logistic", 1) == 410
    # Greydanus' double-descent MLP: h^2 + 52 h + 10 parameters.
    assert n_parameters("mlp", 44, depth=2) == 44**2 + 52 * 44 + 10


@pytest.mark.parametrize(("arch", "width", "depth", "residual"), [
    ("mlp", 16, 2, True), ("mlp", 12, 3, False), ("mlp", 7, 1, False),
    ("cnn", 6, 2, False), ("logistic", 1, 2, False)])
def test_stacked_members_equal_reference_modules(arch, width, depth, residual):
    members = 3
    model = stacked_model(arch, members, width, depth, residual)
    init_members(model, [torch_generator(0, "init", m) for m in range(members)])
    x = torch.randn(members, 9, 40)  # a different batch per member
    out = model(x)  # (members, 9, classes)
    feats = model.features(x)
    for m in range(members):
        ref = reference_model(arch, width, depth, residual)
        ref.load_state_dict(member_state(model, m))
        torch.testing.assert_close(out[m], ref(x[m]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(feats[m], ref.features(x[m]), rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the in-place scoring path gives the same logits
        torch.testing.assert_close(model(x), out, rtol=0, atol=0)
    stacked_count = sum(p.numel() for p in model.parameters())
    assert stacked_count == members * n_parameters(arch, width, depth, residual)


def test_init_matches_pytorch_default_distribution():
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): for a wide layer, max |w| approaches the bound."""
    model = stacked_model("mlp", 2, 300, 2, False)
    init_members(model, [torch_generator(0, "init", m) for m in range(2)])
    w = model.hidden[1].weight.detach()  # (2, 300, 300), fan_in 300
    bound = 300 ** -0.5
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.99 * bound
    assert abs(w.var().item() - bound**2 / 3) < 0.02 * bound**2  # var of U(-b, b) = b^2/3


def test_member_init_depends_only_on_its_generator():
    a = stacked_model("mlp", 2, 8, 2, False)
    b = stacked_model("mlp", 3, 8, 2, False)
    init_members(a, [torch_generator(0, "init", m) for m in (5, 6)])
    init_members(b, [torch_generator(0, "init", m) for m in (4, 5, 6)])
    for k, v in member_state(a, 0).items():
        torch.testing.assert_close(v, member_state(b, 1)[k], rtol=0, atol=0)


@pytest.mark.parametrize(("width", "depth", "residual"), [
    (16, 2, True), (12, 3, False), (9, 3, True), (7, 1, False)])
def test_hand_backward_equals_autograd_of_reference_modules(width, depth, residual):
    """StackedMLP.loss_and_grad against loss.backward() of each plain member."""
    import torch.nn.functional as F

    from biasvar.ensemble.optim import FlatParams

    members, batch = 3, 11
    model = stacked_model("mlp", members, width, depth, residual)
    init_members(model, [torch_generator(0, "init", m) for m in range(members)])
    flat = FlatParams(model)
    flat.grad.fill_(123.0)  # stale values: the hand backward must overwrite, not add
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(members, batch, 40, generator=gen)
    y = torch.randint(0, 10, (members, batch), generator=gen)
    y[0, :] = model(x)[0].argmax(-1)  # member 0 right on every example: accuracy 1
    loss, acc = model.loss_and_grad(x, y)
    assert acc[0] == 1.0
    grads = {name: p.grad for name, p in model.named_parameters()}
    # the gradients live in the optimizer's flat buffer, no stale value left
    assert not (flat.grad == 123.0).any()
    for m in range(members):
        ref = reference_model("mlp", width, depth, residual)
        ref.load_state_dict(member_state(model, m))
        logits = ref(x[m])
        ref_loss = F.cross_entropy(logits, y[m])
        ref_loss.backward()
        torch.testing.assert_close(loss[m], ref_loss.detach(), rtol=1e-6, atol=1e-6)
        assert acc[m] == (logits.argmax(-1) == y[m]).float().mean()
        for name, p in ref.named_parameters():
            torch.testing.assert_close(grads[name][m], p.grad, rtol=1e-5, atol=1e-6)


def test_default_block_logits_are_unchanged():
    """The default run's MLP block (params.yaml's model and optimizer, fewer members and
    steps) gives bit for bit the logits it gave before models were sized from the data.

    Recorded with torch 2.13.0+cpu on this project's x86 CI machine class, 1 and 2 threads
    alike; another torch build or CPU may round differently (then rerecord, after
    checking test_stacked_members_equal_reference_modules).
    """
    from biasvar.core.config import RuntimeParams
    from biasvar.data.dataset import generate
    from biasvar.data.splits import make_split
    from biasvar.ensemble.config import ModelParams, TrainParams
    from biasvar.ensemble.train import BlockSpec, train_block

    ds = generate(1000, 0.8, 42, 0.15, 0)
    split = make_split("bootstrap", ds.n_train, [0, 1], seed=0)
    digests = {}
    for residual in (False, True):
        r = train_block(ds, split, BlockSpec(tuple(range(8)), (0,) * 4 + (1,) * 4,
                                             (0, 1, 2, 3) * 2, 32),
                        ModelParams(arch="mlp", depth=2, residual=residual),
                        TrainParams(optimizer="adam", lr=1e-2, momentum=0.9, weight_decay=0.0,
                                    steps=50, batch_size=100, seed=0, log_every=25),
                        RuntimeParams(device="cpu", threads=1, progress=False))
        digests[residual] = hashlib.sha256(r.test_logits.tobytes()
                                           + r.train_logits.tobytes()).hexdigest()
    assert digests == {
        False: "9e2e751b122a58b5529f4be4698bf3e8046226d2f1baf9d833ca1963a403a323",
        True: "3fbf8bf203dda4fb321a6677fc400a2a75ace4b430b508241cf41d15e95675e0"}


def test_resnet_at_k_64_is_preact_resnet18():
    """k = 64, 4 stages of 2 blocks on CIFAR shapes: PreActResNet18's 11,171,146 parameters
    (kuangliu/pytorch-cifar, the code Nakkiran et al. scale), plus the final norm's 2 x 512."""
    assert n_parameters("resnet", 64, 2, False, (3, 32, 32), 10, stages=4) == 11_171_146 + 1024
    assert n_parameters("cnn2d", 8, input_shape=(1, 8, 8)) == (8 * 9 + 8) + (64 * 9 + 8) + (
        8 * 2 * 2 * 10 + 10)


@pytest.mark.parametrize(("arch", "shape"), [
    ("mlp", (40,)), ("mlp", (3, 32, 32)), ("logistic", (1, 8, 8)), ("cnn1d", (40,)),
    ("cnn1d", (2, 40)), ("cnn2d", (1, 8, 8)), ("cnn2d", (8, 8)), ("cnn2d", (3, 32, 32)),
    ("resnet", (1, 8, 8)), ("resnet", (3, 32, 32))])
@pytest.mark.parametrize("n_classes", [2, 3, 10, 100])
def test_every_family_is_sized_from_the_data(arch, shape, n_classes):
    net = reference_model(arch, 4, depth=1, residual=False, input_shape=shape,
                          n_classes=n_classes, stages=2)
    x = torch.randn(5, *shape)
    assert net(x).shape == (5, n_classes)
    if arch in ("mlp", "logistic"):
        assert net.features(x).shape[1] == (4 if arch == "mlp" else math.prod(shape))


def test_a_family_refuses_an_input_it_cannot_take():
    from biasvar.core.errors import ParamError

    with pytest.raises(ParamError, match=r"model.arch = 'cnn2d' is invalid: cnn2d takes inputs "
                                         r"of shape \(C, H, W\) or \(H, W\), but the "
                                         r"dataset's inputs are \(40,\)"):
        reference_model("cnn2d", 4, input_shape=(40,))
    with pytest.raises(ParamError, match=r"cnn1d takes inputs of shape \(L,\) or \(C, L\)"):
        reference_model("cnn1d", 4, input_shape=(3, 8, 8))
    with pytest.raises(ParamError, match=r"resnet takes inputs of shape"):
        reference_model("resnet", 4, input_shape=(40,))


def test_stacked_models_take_any_shape_and_class_count():
    """The stacked twins equal their plain members on non-MNIST-1D shapes too."""
    for arch, shape in (("mlp", (12,)), ("cnn1d", (2, 24)), ("logistic", (3, 4, 4))):
        model = stacked_model(arch, 2, 5, 2, False, input_shape=shape, n_classes=3)
        init_members(model, [torch_generator(0, "init", m) for m in range(2)])
        x = torch.randn(2, 6, *shape)
        out = model(x if arch != "mlp" else x.flatten(2))
        for m in range(2):
            ref = reference_model(arch, 5, 2, False, input_shape=shape, n_classes=3)
            ref.load_state_dict(member_state(model, m))
            torch.testing.assert_close(out[m], ref(x[m]), rtol=1e-5, atol=1e-5)
