"""Train a block of ensemble members vectorized in one process.

All members of a block share one stacked model (parameters with a leading
member axis) whose parameters live in one flat buffer, and one optimizer over
that buffer. ``mlp``, ``cnn1d`` and ``logistic`` use their hand-written stacked
twins (``biasvar.ensemble.models``; the MLP's is the fast path of the default
run); ``cnn2d``, ``resnet`` and a user's ``module`` use the generic torch.func
path (``biasvar.ensemble.generic``). The input shape and class count come from
the dataset. Adam and SGD with momentum and weight decay are elementwise, so
one optimizer over stacked tensors is exactly M independent per-member
optimizers; the loss is the *sum* over members of each
member's mean minibatch cross-entropy, so member m's gradient is its own.

Member m's randomness comes only from ``(train.seed, purpose, m)``:
initialization (``"init"``) and minibatch order (``"batches"``), and its
training set is its draw's indices. Its result therefore does not depend on
which block, or which block size, trained it (up to float reassociation in
batched kernels).

Scoring never touches a random stream. At every log step and at the end, each
member is scored on the test set and on the whole training partition, split
into its *in-bag* examples (the distinct examples of its draw, each counted
once, whatever its bootstrap multiplicity) and its *out-of-bag* ones (the rest
of the training partition; none for ``split.method: full``, so NaN there).

No non-finite number leaves a block: a NaN/inf minibatch loss fails at its
step (``NonFiniteLossError``), and the final parameters and logits of every
member are checked after the last step, whose update no loss has seen
(``NonFiniteOutputError``, with the member, the partition and the counts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from biasvar.core.config import RuntimeParams
from biasvar.core.errors import BiasvarError, NonFiniteLossError
from biasvar.core.rng import torch_generator
from biasvar.data.dataset import Dataset
from biasvar.data.splits import Split
from biasvar.ensemble.config import ModelParams, TrainParams
from biasvar.ensemble.models import (
    ALIASES,
    STACKED_ARCHS,
    data_shape,
    init_members,
    member_state,
    stacked_model,
)
from biasvar.ensemble.optim import FlatParams, make_optimizer

# Examples per forward pass when scoring a whole partition: about 2M floats per
# (members, chunk, width) activation, so that it stays in the L2/L3 caches and the
# allocator reuses it; 2048-example chunks made scoring 2.5x slower at width 256.
EVAL_FLOATS = 2**21

# Training curves, per log step and member (besides ``step``): running mean of the
# minibatch loss/accuracy since the last log; test loss/accuracy; loss (mean CE)
# and error on the member's in-bag and out-of-bag training examples.
# Final per-member metrics (besides member, draw, seed and the counts n_in_bag, n_oob):
# train_* over the whole training partition, test_*, in-bag and out-of-bag scores.
METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy",
           "in_bag_loss", "in_bag_error", "oob_loss", "oob_error")
# The same scores at every log step. blocks.METRICS, which reads them back, is the same
# tuple (tests/test_train.py checks it: the studies import this module, not blocks).
CURVE_METRICS = METRICS


class NonFiniteOutputError(BiasvarError):
    """A member's final parameters or logits hold NaN or inf (e.g. the last update diverged)."""


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
    curves: dict[str, np.ndarray]  # step (logs,), CURVE_METRICS (logs, members)
    metrics: list[dict]  # one dict per member (NaN where undefined: OOB of a full split)
    states: list[dict[str, torch.Tensor]]  # member checkpoints (reference state_dicts)
    seconds: float
    device: str
    extra: dict = field(default_factory=dict)
    # At each checkpoint step (``TrainParams.checkpoint_steps``): "step" (S,), "test"
    # logits (S, members, n_test, classes) float32 and each of METRICS (S, members);
    # empty: no checkpoints (``blocks.save_block`` writes zero steps)
    checkpoints: dict[str, np.ndarray] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from biasvar.core.errors import ParamError

        raise ParamError("runtime.device", name, "auto or cpu: no CUDA device is available")
    return torch.device(name)


def eval_chunk(members: int, width: int) -> int:
    """Examples per scoring pass for a block (see ``EVAL_FLOATS``): 64 to 2048."""
    return max(64, min(2048, EVAL_FLOATS // (members * max(width, 1))))


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, members: int, chunk: int = 2048
            ) -> torch.Tensor:
    """Logits of every member on the same inputs: ``(N, *input) -> (M, N, classes)``."""
    out = []
    for start in range(0, len(x), chunk):
        xb = x[start:start + chunk]
        xb = xb.unsqueeze(0).expand(members, *xb.shape)  # (M, chunk, *input), no copy
        out.append(model(xb))
    return torch.cat(out, dim=1)


def _ce_correct(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example CE and correctness. logits (M, N, C), y (N,) or (M, N) -> (M, N), (M, N)."""
    m, n, c = logits.shape
    y = y.expand(m, n) if y.dim() == 1 else y
    ce = F.cross_entropy(logits.reshape(m * n, c), y.reshape(-1), reduction="none").view(m, n)
    return ce, (logits.argmax(-1) == y).float()


def _loss_acc(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-member mean CE and accuracy. logits (M, N, C), y (N,) or (M, N) -> (M,), (M,)."""
    ce, correct = _ce_correct(logits, y)
    return ce.mean(1), correct.mean(1)


def _masked_mean(v: torch.Tensor, mask: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Per-member mean of ``v`` (M, N) over ``mask`` (M, N); NaN where ``count`` is 0."""
    return torch.where(mask, v, torch.zeros_like(v)).sum(1) / count


@torch.no_grad()
def _evaluate(model: torch.nn.Module, n_members: int, x_train: torch.Tensor,
              y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
              in_bag: torch.Tensor, n_in_bag: torch.Tensor, n_oob: torch.Tensor,
              chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Both partitions' logits and per-member scores (no random stream is used).

    ``in_bag`` (M, n_train) marks each member's distinct draw examples;
    returns ``(test_logits, train_logits, scores)`` with (M,) scores named as
    in ``CURVE_METRICS`` (test_*, in_bag_*, oob_*) plus ``train_loss`` and
    ``train_accuracy`` over the whole training partition.
    """
    test_logits = predict(model, x_test, n_members, chunk)  # (M, n_test, C)
    train_logits = predict(model, x_train, n_members, chunk)  # (M, n_train, C)
    test_loss, test_acc = _loss_acc(test_logits, y_test)
    ce, correct = _ce_correct(train_logits, y_train)  # (M, n_train)
    oob = ~in_bag
    scores = {
        "train_loss": ce.mean(1), "train_accuracy": correct.mean(1),
        "test_loss": test_loss, "test_accuracy": test_acc,
        "in_bag_loss": _masked_mean(ce, in_bag, n_in_bag),
        "in_bag_error": 1 - _masked_mean(correct, in_bag, n_in_bag),
        "oob_loss": _masked_mean(ce, oob, n_oob),
        "oob_error": 1 - _masked_mean(correct, oob, n_oob),
    }
    return test_logits, train_logits, scores


class EpochBatches:
    """Each member's own minibatches of its own draw (the ensemble protocol).

    ``draw_idx`` (M, n_draw) holds each member's training indices; every epoch each
    member takes a fresh permutation of them from its own ``generators[m]`` and walks
    it in minibatches of ``batch``, dropping the ragged tail. A full batch
    (``batch == n_draw``) is every member's whole draw at every step, no random draw.
    Called with the step (1-based), it returns the (M, batch) training indices.
    """

    def __init__(self, draw_idx: torch.Tensor, batch: int, generators: list[torch.Generator]):
        self.draw_idx, self.batch, self.generators = draw_idx, batch, generators
        self.n_draw = draw_idx.shape[1]
        self.per_epoch = self.n_draw // batch
        self.perm: torch.Tensor | None = None

    def __call__(self, step: int) -> torch.Tensor:
        if self.batch == self.n_draw:
            return self.draw_idx  # (M, n_draw)
        pos = (step - 1) % self.per_epoch
        if pos == 0:  # a fresh permutation per member per epoch, from its own generator
            self.perm = torch.stack([torch.randperm(self.n_draw, generator=g)
                                     for g in self.generators]).to(self.draw_idx.device)
        window = self.perm[:, pos * self.batch:(pos + 1) * self.batch]
        return torch.gather(self.draw_idx, 1, window)  # (M, batch)


def fit_members(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                batches, steps: int, optimizer: str, lr: float, momentum: float = 0.0,
                weight_decay: float = 0.0, *, log_every: int = 0, on_log=None,
                log_start: bool = False, hand_backward: bool = False,
                members: tuple[int, ...] | None = None, checkpoints: tuple[int, ...] = (),
                on_checkpoint=None) -> torch.Tensor:
    """The training loop of every ensemble in biasvar: the pipeline's blocks and the
    studies' stacked nets (``studies.nets``, ``studies.collapse``).

    ``model`` maps (M, B, *input) to (M, B, classes) with one parameter slice per
    member; its parameters move into one flat buffer (``optim.FlatParams``) updated by
    one elementwise optimizer (``optim.make_optimizer``: exactly M independent
    per-member optimizers). ``batches(step)`` gives the step's training indices into
    ``x``/``y``: (M, B), each member its own (``EpochBatches``), or (B,), one minibatch
    every member sees. The loss is the sum over members of each member's mean
    cross-entropy, so member m's gradient is its own; ``hand_backward`` uses the
    model's ``loss_and_grad`` (the stacked MLP's hand-written backward) instead of
    autograd. ``on_log(step, train_loss, train_accuracy)`` runs every ``log_every``
    steps and after the last, with each member's (M,) running means since the last
    log (and at step 0 with NaNs when ``log_start``), with the model in eval mode.
    ``on_checkpoint(step)`` runs after the update of every step in ``checkpoints``, in
    eval mode, before that step's log; it must not draw from a random stream or change
    the model, so that a member's trajectory is the same with or without checkpoints
    (tests/test_train.py checks it bit for bit).

    Returns the (M,) minibatch loss of the last step. Raises
    ``NonFiniteLossError`` naming the member (its id in ``members``) and the first
    step whose minibatch loss was NaN/inf, checked at each log and at the end.
    """
    n = next(model.parameters()).shape[0]
    members = tuple(range(n)) if members is None else members
    device = x.device
    flat = FlatParams(model)
    opt = make_optimizer(optimizer, flat, lr, momentum, weight_decay)
    run_loss = torch.zeros(n, device=device)
    run_acc = torch.zeros(n, device=device)
    run_n = 0
    # First step at which each member's loss was non-finite (-1: never), kept on
    # the device so the check costs no host sync per step.
    first_bad = torch.full((n,), -1, dtype=torch.long, device=device)
    wanted = frozenset(int(s) for s in checkpoints)

    def log(step: int, loss: torch.Tensor, acc: torch.Tensor) -> None:
        model.eval()  # scoring mode (BatchNorm of a user's module: running statistics)
        on_log(step, loss, acc)
        model.train()

    if on_log is not None and log_start:
        nan = torch.full((n,), float("nan"), device=device)
        log(0, nan, nan)
    for step in range(1, steps + 1):
        idx = batches(step)
        xb, yb = x[idx], y[idx]  # (M, B, *input), (M, B); or (B, *input), (B,) shared
        if idx.dim() == 1:
            xb = xb.unsqueeze(0).expand(n, *xb.shape)  # every member, no copy
        if hand_backward:
            loss_m, acc_m = model.loss_and_grad(xb, yb.expand(n, -1))  # grads overwritten
        else:
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

        if on_checkpoint is not None and step in wanted:
            _raise_if_bad(first_bad, members, run_loss)
            model.eval()
            on_checkpoint(step)
            model.train()
        if (log_every and step % log_every == 0) or step == steps:
            _raise_if_bad(first_bad, members, run_loss)
            if on_log is not None:
                log(step, run_loss / run_n, run_acc / run_n)
            run_loss.zero_()
            run_acc.zero_()
            run_n = 0
    return loss_d


def train_block(dataset: Dataset, split: Split, spec: BlockSpec, model_cfg: ModelParams,
                train_cfg: TrainParams, runtime: RuntimeParams, desc: str = "",
                autograd: bool = False, generic: bool = False) -> BlockResult:
    """Train the members of ``spec`` together and score them on both partitions.

    The MLP's training step uses its hand-written backward
    (``StackedMLP.loss_and_grad``); ``autograd=True`` forces
    ``loss.backward()`` instead (for the benchmark and the tests that compare
    the two). ``cnn1d`` and ``logistic`` use autograd through their stacked
    twins; the other families use ``vmap(grad(...))`` of the generic path, which
    ``generic=True`` forces for every family (the tests compare the paths).

    Raises ``NonFiniteLossError`` naming the member and the first step whose
    minibatch loss was NaN/inf, and ``NonFiniteOutputError`` naming the member,
    the partition and the counts when its final parameters or logits are not
    all finite.
    """
    from tqdm.auto import tqdm

    from biasvar.core.alloc import keep_freed_memory

    # the same activations are allocated every step: keep freed memory in the heap,
    # or a step may page-fault on fresh pages (1.6-2x slower; biasvar.core.alloc)
    keep_freed_memory()

    # runtime.threads 0: torch's default, which is OMP_NUM_THREADS when set (biasvar
    # launch sets it per task: cores // tasks at a time); never changes results.
    if runtime.threads:
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
    # (M, n_train): each member's distinct draw examples (in-bag); the rest is out-of-bag.
    in_bag = torch.zeros((n_members, len(y_train)), dtype=torch.bool, device=device)
    in_bag.scatter_(1, draw_idx, True)
    n_in_bag = in_bag.sum(1)  # (M,)
    n_oob = len(y_train) - n_in_bag
    eval_args = (x_train, y_train, x_test, y_test, in_bag, n_in_bag, n_oob)
    batch = train_cfg.check_against(n_draw)

    input_shape, n_classes = data_shape(dataset)
    arch = ALIASES.get(model_cfg.arch, model_cfg.arch)
    init_gens = [torch_generator(train_cfg.seed, "init", m) for m in spec.members]
    if arch in STACKED_ARCHS and not generic:
        if arch == "mlp":  # the fast path takes flat inputs; a view for MNIST-1D's (N, 40)
            x_train, x_test = x_train.flatten(1), x_test.flatten(1)
            eval_args = (x_train, y_train, x_test, y_test, in_bag, n_in_bag, n_oob)
        model = stacked_model(arch, n_members, spec.width, model_cfg.depth,
                              model_cfg.residual, input_shape, n_classes).to(device)
        init_members(model, init_gens)
        chunk = eval_chunk(n_members, spec.width)
    else:
        from biasvar.ensemble.generic import activation_width, build_ensemble

        model = build_ensemble(model_cfg, spec.width, input_shape, n_classes, init_gens,
                               device)
        chunk = eval_chunk(n_members, activation_width(arch, spec.width, input_shape))
    batch_gens = [torch_generator(train_cfg.seed, "batches", m) for m in spec.members]
    batches = EpochBatches(draw_idx, batch, batch_gens)
    hand_backward = hasattr(model, "loss_and_grad") and not autograd

    logs = {k: [] for k in ("step", *CURVE_METRICS)}
    last_eval = None
    # Test logits and per-member scores at the checkpoint steps (the last step's are the
    # final evaluation, taken after the loop rather than computed twice).
    ckpt_steps = train_cfg.checkpoint_steps()
    ckpt = {"step": [], "test": [], **{k: [] for k in METRICS}}

    def keep(step: int, evaluation) -> None:
        test_logits, _, scores = evaluation
        ckpt["step"].append(step)
        ckpt["test"].append(test_logits.cpu().numpy().astype(np.float32))
        for k in METRICS:
            ckpt[k].append(scores[k].cpu().numpy())

    def on_checkpoint(step: int) -> None:
        if step < train_cfg.steps:
            keep(step, _evaluate(model, n_members, *eval_args, chunk=chunk))
    bar = tqdm(total=train_cfg.steps, desc=desc or "train", disable=not runtime.progress,
               mininterval=1.0, leave=False)

    def on_log(step: int, train_loss: torch.Tensor, train_acc: torch.Tensor) -> None:
        nonlocal last_eval
        # The last step always logs: its evaluation is the block's final one.
        last_eval = _evaluate(model, n_members, *eval_args, chunk=chunk)
        scores = last_eval[2]
        logs["step"].append(step)
        logs["train_loss"].append(train_loss.cpu().numpy())
        logs["train_accuracy"].append(train_acc.cpu().numpy())
        for k in CURVE_METRICS[2:]:
            logs[k].append(scores[k].cpu().numpy())
        bar.set_postfix(loss=f"{logs['train_loss'][-1].mean():.3f}",
                        test_acc=f"{logs['test_accuracy'][-1].mean():.3f}")
        bar.update(step - bar.n)

    fit_members(model, x_train, y_train, batches, train_cfg.steps, train_cfg.optimizer,
                train_cfg.lr, train_cfg.momentum, train_cfg.weight_decay,
                log_every=train_cfg.log_every, on_log=on_log, hand_backward=hand_backward,
                members=spec.members, checkpoints=ckpt_steps, on_checkpoint=on_checkpoint)
    bar.close()

    test_logits, train_logits, scores = last_eval  # logged after the last step
    _raise_if_nonfinite(model, spec.members, test_logits, train_logits)
    if train_cfg.steps in ckpt_steps:
        keep(train_cfg.steps, last_eval)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0

    scores = {k: v.cpu().numpy() for k, v in scores.items()}
    counts = {"n_in_bag": n_in_bag.cpu().numpy(), "n_oob": n_oob.cpu().numpy()}
    metrics = [
        {"member": m, "draw": d, "seed": s,
         **{k: float(scores[k][i]) for k in METRICS},
         **{k: int(v[i]) for k, v in counts.items()}}
        for i, (m, d, s) in enumerate(zip(spec.members, spec.draws, spec.seeds, strict=True))
    ]
    curves = {"step": np.asarray(logs["step"], dtype=np.int64)}
    curves.update({k: np.stack(v) for k, v in logs.items() if k != "step"})
    return BlockResult(
        spec=spec,
        test_logits=test_logits.cpu().numpy().astype(np.float32),
        train_logits=train_logits.cpu().numpy().astype(np.float32),
        curves=curves, metrics=metrics,
        checkpoints=_stack_checkpoints(ckpt, n_members, tuple(test_logits.shape[1:])),
        states=[member_state(model, i) for i in range(n_members)],
        seconds=seconds, device=str(device))


def _stack_checkpoints(ckpt: dict[str, list], n_members: int,
                       shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """The checkpoint lists as arrays: (S,), (S, M, n_test, C), (S, M) (S may be 0)."""
    if not ckpt["step"]:
        return {"step": np.zeros(0, np.int64),
                "test": np.zeros((0, n_members, *shape), np.float32),
                **{k: np.zeros((0, n_members)) for k in METRICS}}
    return {"step": np.asarray(ckpt["step"], np.int64), "test": np.stack(ckpt["test"]),
            **{k: np.stack(ckpt[k]).astype(np.float64) for k in METRICS}}


def _raise_if_nonfinite(model: torch.nn.Module, members: tuple[int, ...],
                        test_logits: torch.Tensor, train_logits: torch.Tensor) -> None:
    """Raise ``NonFiniteOutputError`` for the first member whose final values are not finite."""
    n = len(members)
    bad_params = torch.zeros(n, dtype=torch.long, device=test_logits.device)
    total_params = 0
    for p in model.parameters():  # (M, ...) stacked
        bad_params += (~torch.isfinite(p.detach())).reshape(n, -1).sum(1)
        total_params += p[0].numel()
    counts = {"parameters": (bad_params, total_params)}
    for part, logits in (("test", test_logits), ("train", train_logits)):
        counts[f"{part} logits"] = ((~torch.isfinite(logits)).reshape(n, -1).sum(1),
                                    logits[0].numel())
    bad = {k: v.cpu().numpy() for k, (v, _) in counts.items()}
    hit = np.flatnonzero(np.sum(list(bad.values()), axis=0))
    if not len(hit):
        return
    i = int(hit[0])
    what = ", ".join(f"{int(bad[k][i])} of {total} {k}" for k, (_, total) in counts.items()
                     if bad[k][i])
    others = f"; members affected: {[members[j] for j in hit]}" if len(hit) > 1 else ""
    raise NonFiniteOutputError(f"member {members[i]}: non-finite values after the last "
                               f"training step: {what}{others}")


def _raise_if_bad(first_bad: torch.Tensor, members: tuple[int, ...],
                  run_loss: torch.Tensor) -> None:
    bad = first_bad.cpu().numpy()
    if (bad >= 0).any():
        i = int(np.argmin(np.where(bad >= 0, bad, np.iinfo(np.int64).max)))
        raise NonFiniteLossError(members[i], int(bad[i]), float(run_loss[i]))
