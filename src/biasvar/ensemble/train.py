"""Train a block of ensemble members vectorized in one process.

All members of a block share one stacked model (parameters with a leading
member axis) whose parameters live in one flat buffer, and one optimizer over
that buffer. Adam and SGD with momentum and weight decay are elementwise, so
one optimizer over stacked tensors is exactly M independent per-member
optimizers; the loss is the *sum* over members of each
member's mean minibatch cross-entropy, so member m's gradient is its own.

Member m's randomness comes only from ``(train.seed, purpose, m)``:
initialization (``"init"``) and minibatch order (``"batches"``), and its
training set is its draw's indices. Its result therefore does not depend on
which block, or which block size, trained it (up to float reassociation in
batched kernels).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from biasvar.core.config import RuntimeParams
from biasvar.core.errors import NonFiniteLossError
from biasvar.core.rng import torch_generator
from biasvar.data.dataset import Dataset
from biasvar.data.splits import Split
from biasvar.ensemble.config import ModelParams, TrainParams
from biasvar.ensemble.models import init_members, member_state, stacked_model
from biasvar.ensemble.optim import FlatParams, make_optimizer

EVAL_CHUNK = 2048  # examples per forward pass when scoring a whole partition


@dataclass(frozen=True)
class BlockSpec:
    """What one block trains: which members, on which draws, at which width."""

    members: tuple[int, ...]
    draws: tuple[int, ...]  # draw of each member
    seeds: tuple[int, ...]  # seed of each member (its index within the draw)
    width: int


@dataclass
class BlockResult:
    """Everything a block produces (numpy / CPU, ready to write)."""

    spec: BlockSpec
    test_logits: np.ndarray  # (members, n_test, classes) float32
    train_logits: np.ndarray  # (members, n_train, classes) float32
    curves: dict[str, np.ndarray]  # step (logs,), others (logs, members)
    metrics: list[dict]  # one dict per member
    states: list[dict[str, torch.Tensor]]  # member checkpoints (reference state_dicts)
    seconds: float
    device: str
    extra: dict = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from biasvar.core.errors import ParamError

        raise ParamError("runtime.device", name, "auto or cpu: no CUDA device is available")
    return torch.device(name)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, members: int) -> torch.Tensor:
    """Logits of every member on the same inputs: ``(N, 40) -> (M, N, classes)``."""
    out = []
    for start in range(0, len(x), EVAL_CHUNK):
        xb = x[start:start + EVAL_CHUNK].unsqueeze(0).expand(members, -1, -1)
        out.append(model(xb))
    return torch.cat(out, dim=1)


def _loss_acc(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean CE and accuracy. logits (M, N, C), y (N,) or (M, N) -> (M,), (M,)."""
    m, n, c = logits.shape
    y = y.expand(m, n) if y.dim() == 1 else y
    ce = F.cross_entropy(logits.reshape(m * n, c), y.reshape(-1), reduction="none").view(m, n)
    return ce.mean(1), (logits.argmax(-1) == y).float().mean(1)


def train_block(dataset: Dataset, split: Split, spec: BlockSpec, model_cfg: ModelParams,
                train_cfg: TrainParams, runtime: RuntimeParams, desc: str = "") -> BlockResult:
    """Train the members of ``spec`` together and score them on both partitions.

    Raises ``NonFiniteLossError`` naming the member and the first step whose
    minibatch loss was NaN/inf.
    """
    from tqdm.auto import tqdm

    if runtime.threads > 0:
        torch.set_num_threads(runtime.threads)
    # Adam's second moments underflow into denormals, which are ~100x slower on
    # x86 CPUs; flushing them to zero changes results only at the 1e-38 level.
    torch.set_flush_denormal(True)
    device = resolve_device(runtime.device)
    n_members = len(spec.members)
    t0 = time.perf_counter()

    x_train = torch.as_tensor(dataset.x_train, dtype=torch.float32, device=device)
    y_train = torch.as_tensor(dataset.y_train, dtype=torch.long, device=device)
    x_test = torch.as_tensor(dataset.x_test, dtype=torch.float32, device=device)
    y_test = torch.as_tensor(dataset.y_test, dtype=torch.long, device=device)

    # (M, n_draw): each member's training indices (its draw's resample).
    draw_idx = torch.as_tensor(np.stack([split.for_draw(d) for d in spec.draws]),
                               dtype=torch.long, device=device)
    n_draw = draw_idx.shape[1]
    batch = train_cfg.check_against(n_draw)
    steps_per_epoch = n_draw // batch  # drop the ragged tail of each epoch

    model = stacked_model(model_cfg.arch, n_members, spec.width, model_cfg.depth,
                          model_cfg.residual).to(device)
    init_members(model, [torch_generator(train_cfg.seed, "init", m) for m in spec.members])
    flat = FlatParams(model)
    opt = make_optimizer(train_cfg.optimizer, flat, train_cfg.lr, train_cfg.momentum,
                         train_cfg.weight_decay)
    batch_gens = [torch_generator(train_cfg.seed, "batches", m) for m in spec.members]

    logs = {k: [] for k in ("step", "train_loss", "train_accuracy", "test_loss",
                            "test_accuracy")}
    run_loss = torch.zeros(n_members, device=device)
    run_acc = torch.zeros(n_members, device=device)
    run_n = 0
    # First step at which each member's loss was non-finite (-1: never), kept on
    # the device so the check costs no host sync per step.
    first_bad = torch.full((n_members,), -1, dtype=torch.long, device=device)
    full_batch = batch == n_draw
    perm = None

    bar = tqdm(total=train_cfg.steps, desc=desc or "train", disable=not runtime.progress,
               mininterval=1.0, leave=False)
    for step in range(1, train_cfg.steps + 1):
        pos = (step - 1) % steps_per_epoch
        if full_batch:
            batch_idx = draw_idx  # (M, n_draw)
        else:
            if pos == 0:  # a fresh permutation per member per epoch, from its own generator
                perm = torch.stack([torch.randperm(n_draw, generator=g) for g in batch_gens])
                perm = perm.to(device)
            batch_idx = torch.gather(draw_idx, 1, perm[:, pos * batch:(pos + 1) * batch])
        xb, yb = x_train[batch_idx], y_train[batch_idx]  # (M, B, 40), (M, B)

        logits = model(xb)  # (M, B, classes)
        loss_m, acc_m = _loss_acc(logits, yb)  # (M,), (M,)
        flat.zero_grad()
        loss_m.sum().backward()
        opt.step()

        with torch.no_grad():
            loss_d = loss_m.detach()
            bad = ~torch.isfinite(loss_d) & (first_bad < 0)
            first_bad = torch.where(bad, torch.full_like(first_bad, step), first_bad)
            run_loss += loss_d
            run_acc += acc_m
            run_n += 1

        if step % train_cfg.log_every == 0 or step == train_cfg.steps:
            _raise_if_bad(first_bad, spec.members, run_loss)
            test_logits = predict(model, x_test, n_members)
            test_loss, test_acc = _loss_acc(test_logits, y_test)
            logs["step"].append(step)
            logs["train_loss"].append((run_loss / run_n).cpu().numpy())
            logs["train_accuracy"].append((run_acc / run_n).cpu().numpy())
            logs["test_loss"].append(test_loss.cpu().numpy())
            logs["test_accuracy"].append(test_acc.cpu().numpy())
            run_loss.zero_()
            run_acc.zero_()
            run_n = 0
            bar.set_postfix(loss=f"{logs['train_loss'][-1].mean():.3f}",
                            test_acc=f"{logs['test_accuracy'][-1].mean():.3f}")
        bar.update(1)
    bar.close()

    test_logits = predict(model, x_test, n_members)  # (M, n_test, C)
    train_logits = predict(model, x_train, n_members)  # (M, n_train, C)
    test_loss, test_acc = _loss_acc(test_logits, y_test)
    train_loss, train_acc = _loss_acc(train_logits, y_train)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0

    metrics = [
        {"member": m, "draw": d, "seed": s,
         "train_loss": float(train_loss[i]), "train_accuracy": float(train_acc[i]),
         "test_loss": float(test_loss[i]), "test_accuracy": float(test_acc[i])}
        for i, (m, d, s) in enumerate(zip(spec.members, spec.draws, spec.seeds, strict=True))
    ]
    curves = {"step": np.asarray(logs["step"], dtype=np.int64)}
    curves.update({k: np.stack(v) for k, v in logs.items() if k != "step"})
    return BlockResult(
        spec=spec,
        test_logits=test_logits.cpu().numpy().astype(np.float32),
        train_logits=train_logits.cpu().numpy().astype(np.float32),
        curves=curves, metrics=metrics,
        states=[member_state(model, i) for i in range(n_members)],
        seconds=seconds, device=str(device))


def _raise_if_bad(first_bad: torch.Tensor, members: tuple[int, ...],
                  run_loss: torch.Tensor) -> None:
    bad = first_bad.cpu().numpy()
    if (bad >= 0).any():
        i = int(np.argmin(np.where(bad >= 0, bad, np.iinfo(np.int64).max)))
        raise NonFiniteLossError(members[i], int(bad[i]), float(run_loss[i]))
