"""The generic torch.func path (biasvar.ensemble.generic): equal to the hand-written stacked
models and to plain PyTorch members, block-size invariant, per-member normalization, user
factories and their one-line failures, any input shape and class count."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from biasvar.core.config import RuntimeParams
from biasvar.core.errors import ParamError
from biasvar.core.rng import torch_generator
from biasvar.data.splits import make_split
from biasvar.ensemble.config import ModelParams, TrainParams
from biasvar.ensemble.generic import VmapEnsemble, build_ensemble, build_member
from biasvar.ensemble.models import model_from_params
from biasvar.ensemble.optim import FlatParams, FlatSGD
from biasvar.ensemble.train import BlockSpec, train_block

RUNTIME = RuntimeParams(device="cpu", threads=0, progress=False)
BN_FACTORY = "biasvar.ensemble.examples:bn_convnet"


def _model(arch, depth=2, residual=True, stages=4, module=None):
    return ModelParams(arch=arch, depth=depth, residual=residual, stages=stages, module=module)


def _train_cfg(steps=12, batch=16, lr=1e-2, optimizer="adam"):
    return TrainParams(optimizer=optimizer, lr=lr, momentum=0.9, weight_decay=1e-4,
                       steps=steps, batch_size=batch, seed=0, log_every=max(1, steps // 2))


def _images(shape=(1, 8, 8), n_classes=3, n_train=96, n_test=40, seed=0):
    """A dataset-like object with image inputs; labels depend on the pixels (learnable)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train + n_test, *shape)).astype(np.float32)
    flat = x.reshape(len(x), -1)
    y = (np.abs(flat[:, : n_classes]).argmax(1)).astype(np.int64)
    # n_classes as the data providers will record it; the input shape comes from the arrays
    return SimpleNamespace(x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:],
                           y_test=y[n_train:], n_train=n_train, n_test=n_test,
                           n_classes=n_classes)


def _spec(members, width, spd=2):
    return BlockSpec(tuple(members), tuple(m // spd for m in members),
                     tuple(m % spd for m in members), width)


def _block(ds, members, model, width=4, steps=12, batch=16, generic=False, spd=2):
    split = make_split("bootstrap", ds.n_train, sorted({m // spd for m in members}), seed=0)
    return train_block(ds, split, _spec(members, width, spd), model,
                       _train_cfg(steps, batch), RUNTIME, generic=generic)


# ---------------------------------------------------------------- equal to the other paths
@pytest.mark.parametrize("arch", ["mlp", "cnn1d", "logistic"])
def test_generic_path_equals_the_hand_written_stacked_models(small_dataset, arch):
    """Same init, same minibatches: the MLP fast path (and the stacked cnn1d / logistic)
    and the generic path give the same logits up to float rounding."""
    model = _model(arch)
    fast = _block(small_dataset, [0, 1, 2], model, width=16, steps=30, batch=50)
    gen = _block(small_dataset, [0, 1, 2], model, width=16, steps=30, batch=50, generic=True)
    np.testing.assert_allclose(gen.test_logits, fast.test_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gen.train_logits, fast.train_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gen.curves["train_loss"], fast.curves["train_loss"], rtol=1e-4)
    for a, b in zip(gen.states, fast.states, strict=True):
        assert a.keys() == b.keys()


@pytest.mark.parametrize(("arch", "shape", "extra"), [
    ("cnn2d", (1, 8, 8), {}),
    ("resnet", (3, 8, 8), {"depth": 1, "stages": 2}),
    ("module", (1, 8, 8), {"module": BN_FACTORY}),
])
def test_generic_path_equals_plain_pytorch_members(arch, shape, extra):
    """M plain nn.Modules, one torch.optim.SGD each, the same init and minibatches.

    Gradients are compared at every step. SGD rather than Adam for the trajectory:
    Adam's first steps move every weight by about lr whatever the gradient's size, so a
    gradient that is 0 up to rounding can take either sign, and float noise grows to
    1e-4 in five steps; stacked Adam equals torch's Adam elementwise (test_optim.py).
    """
    members, steps, batch, n_classes, width = 3, 5, 8, 3, 4
    cfg = {"arch": arch, "depth": 2, "residual": False, **extra}
    gens = [torch_generator(0, "init", m) for m in range(members)]
    ens = build_ensemble(cfg, width, shape, n_classes, gens)
    flat = FlatParams(ens)
    opt = FlatSGD(flat.flat, flat.grad, lr=0.05, momentum=0.9)
    plain = [build_member(cfg, width, shape, n_classes, torch_generator(0, "init", m))
             for m in range(members)]
    opts = [torch.optim.SGD(p.parameters(), lr=0.05, momentum=0.9) for p in plain]
    data = torch.Generator().manual_seed(3)
    for _ in range(steps):
        x = torch.randn(members, batch, *shape, generator=data)  # its own batch per member
        y = torch.randint(0, n_classes, (members, batch), generator=data)
        loss, _ = ens.loss_and_grad(x, y)
        opt.step()
        for m, (net, o) in enumerate(zip(plain, opts, strict=True)):
            o.zero_grad()
            ref = F.cross_entropy(net(x[m]), y[m])
            ref.backward()
            torch.testing.assert_close(loss[m], ref.detach(), rtol=1e-5, atol=1e-5)
            for p, stacked in zip(net.parameters(), ens.stacked, strict=True):
                torch.testing.assert_close(stacked.grad[m], p.grad, rtol=1e-4, atol=1e-6)
            o.step()
    x = torch.randn(7, *shape, generator=data)
    ens.eval()
    out = ens(x.unsqueeze(0).expand(members, *x.shape))  # (members, 7, classes)
    for m, net in enumerate(plain):
        net.eval()
        with torch.no_grad():
            torch.testing.assert_close(out[m], net(x), rtol=1e-4, atol=1e-5)
        # the checkpoint is the plain member's state_dict (running statistics included)
        fresh = model_from_params(cfg, width, shape, n_classes)
        fresh.load_state_dict(ens.member_state(m))
        fresh.eval()
        with torch.no_grad():
            torch.testing.assert_close(fresh(x), net(x), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- block-size invariance
@pytest.mark.parametrize(("arch", "extra"), [
    ("cnn2d", {}), ("resnet", {"depth": 1, "stages": 2}), ("module", {"module": BN_FACTORY})])
def test_member_result_does_not_depend_on_its_block(arch, extra):
    ds = _images()
    model = _model(arch, residual=False, **extra)
    block4 = _block(ds, [4, 5, 6, 7], model)
    alone = _block(ds, [6], model)
    np.testing.assert_allclose(alone.test_logits[0], block4.test_logits[2], rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(alone.train_logits[0], block4.train_logits[2], rtol=1e-4,
                               atol=1e-5)
    for k, v in alone.states[0].items():
        torch.testing.assert_close(v, block4.states[2][k], rtol=1e-4, atol=1e-5)
    assert np.abs(block4.test_logits[0] - block4.test_logits[1]).max() > 1e-3


# ---------------------------------------------------------------- per-member normalization
@pytest.mark.parametrize(("arch", "extra"), [
    ("resnet", {"depth": 1, "stages": 2}), ("module", {"module": BN_FACTORY})])
def test_a_members_normalization_ignores_the_other_members(arch, extra):
    """Changing member 1's batch changes neither member 0's outputs, its gradients, nor
    (BatchNorm) its running statistics."""
    cfg = {"arch": arch, "depth": 2, "residual": False, **extra}

    def run(x):
        ens = build_ensemble(cfg, 4, (1, 8, 8), 3, [torch_generator(0, "init", m)
                                                    for m in range(3)])
        FlatParams(ens)
        y = torch.zeros(3, 6, dtype=torch.long)
        out = ens(x)  # training mode: batch statistics where the module has them
        ens.loss_and_grad(x, y)
        return ens, out

    x = torch.randn(3, 6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    x2 = x.clone()
    x2[1] = x2[1] * 7 + 2
    a, out_a = run(x)
    b, out_b = run(x2)
    torch.testing.assert_close(out_a[0], out_b[0], rtol=0, atol=0)
    assert not torch.allclose(out_a[1], out_b[1])
    for pa, pb in zip(a.stacked, b.stacked, strict=True):
        torch.testing.assert_close(pa.grad[0], pb.grad[0], rtol=0, atol=0)
    sa, sb = a.member_state(0), b.member_state(0)
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)
    if arch == "module":  # BatchNorm: member 1's running mean moved, member 0's did not
        assert not torch.allclose(a.member_state(1)["1.running_mean"],
                                  b.member_state(1)["1.running_mean"])


# ---------------------------------------------------------------- user factories
def test_a_factory_module_trains_and_its_checkpoint_reloads():
    ds = _images(n_classes=4)
    model = _model("module", module="biasvar.ensemble.examples:mlp")
    r = _block(ds, [0, 1], model, width=8, steps=20)
    assert r.test_logits.shape == (2, ds.n_test, 4)
    fresh = model_from_params(model, 8, (1, 8, 8), 4)
    fresh.load_state_dict(r.states[1])
    with torch.no_grad():
        out = fresh(torch.as_tensor(ds.x_test)).numpy()
    np.testing.assert_allclose(out, r.test_logits[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("module", "says"), [
    ("no_such_package_xyz.models:net", "module 'no_such_package_xyz.models' cannot be imported"),
    ("biasvar.ensemble.examples:no_such_function", "has no function 'no_such_function'"),
    ("generic_factories:not_a_module", "returning a torch.nn.Module, not dict"),
    ("generic_factories:raises", "the factory failed .*RuntimeError: no GPU in this factory"),
])
def test_a_bad_factory_fails_before_training_with_one_line(module, says):
    ds = _images()
    with pytest.raises(ParamError, match=says) as e:
        _block(ds, [0], _model("module", module=module))
    assert "\n" not in str(e.value) and "model.module" in str(e.value) and module in str(e.value)


@pytest.mark.parametrize(("params", "says"), [
    ({"arch": "module"}, "model.module = None is invalid"),
    ({"arch": "module", "module": "no_colon"}, "model.module = 'no_colon' is invalid"),
    ({"arch": "mlp", "module": "a.b:c"}, "null: arch is mlp"),
])
def test_module_param_goes_with_arch_module(params, says):
    with pytest.raises(ParamError, match=says):
        ModelParams.from_dict({"depth": 2, "residual": False, **params})


# ---------------------------------------------------------------- shapes and class counts
CASES = [(arch, (40,)) for arch in ("mlp", "cnn1d", "logistic")] + [
    (arch, shape) for shape in ((1, 8, 8), (3, 32, 32))
    for arch in ("mlp", "logistic", "cnn2d", "resnet", "module")]


@pytest.mark.parametrize("n_classes", [2, 3, 10, 100])
@pytest.mark.parametrize(("arch", "shape"), CASES)
def test_any_input_shape_and_class_count_trains(arch, shape, n_classes):
    """Two members, three steps and scoring (0.01-0.3 s each on a 2-core CPU; speed is
    measured by bench/bench_generic.py, not here)."""
    ds = _images(shape, n_classes, n_train=32, n_test=8)
    ds.y_train = np.arange(32) % n_classes  # every class may occur
    model = _model(arch, depth=1, residual=False, stages=2,
                   module="biasvar.ensemble.examples:mlp" if arch == "module" else None)
    r = _block(ds, [0, 1], model, width=4, steps=3, batch=8)
    assert r.test_logits.shape == (2, 8, n_classes)
    assert np.isfinite(r.test_logits).all()


def test_vmap_ensemble_has_plain_state_names():
    cfg = {"arch": "resnet", "depth": 1, "residual": False, "stages": 2}
    ens = build_ensemble(cfg, 4, (3, 8, 8), 10, [torch_generator(0, "init", m) for m in (0, 1)])
    assert isinstance(ens, VmapEnsemble) and ens.members == 2
    plain = model_from_params(cfg, 4, (3, 8, 8), 10)
    assert list(ens.member_state(0)) == list(plain.state_dict())


def test_vmap_grad_equals_autograd_through_the_vmapped_forward():
    """``autograd=True`` (loss.backward() through vmap's forward) trains as vmap(grad) does."""
    ds = _images()
    split = make_split("bootstrap", ds.n_train, [0], seed=0)
    runs = [train_block(ds, split, _spec([0, 1], 4), _model("cnn2d"), _train_cfg(), RUNTIME,
                        autograd=autograd) for autograd in (False, True)]
    np.testing.assert_allclose(runs[0].test_logits, runs[1].test_logits, rtol=1e-4, atol=1e-5)
