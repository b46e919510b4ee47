r"""Training runs that can be looked into at every step: the settings and drivers of the
penalty-fidelity, flatness and m-sharpness experiments.

A :class:`Setting` fixes data, model and base optimizer (noisy and clean digits CNN, MNIST-1D
CNN: :data:`SETTINGS`); a :class:`Driver` fixes the method, stepped through the real optimizers
of :mod:`asam_theory.torch`:

* ``"sgd"`` — ``torch.optim.SGD``;
* ``"sam"`` — :class:`asam_theory.torch.SAM` (``first_step``/``second_step``, the second pass
  under :func:`~asam_theory.torch._common.bn_frozen`);
* ``"asyncsam"`` — :class:`asam_theory.torch.AsyncSAM` with ``deterministic=True`` (the
  seed-exact sequential run with fixed staleness τ), its ascent on the first b′ samples of an
  independent batch stream (seed + 1);
* ``"lookahead"`` — the same optimizer fed by :class:`asam_theory.torch.lookahead.LookAhead`:
  the ascent at :math:`w_{t-\tau}` on the first b′ samples of the descent batch :math:`B_t`;
* ``"sam_micro"`` — SAM whose ascent uses the first m = b′ samples of :math:`B_t` (the
  m-sharpness SAM of Foret et al., ICLR 2021, arXiv 2010.01412, with one micro-batch; Luo et
  al., NeurIPS 2025, arXiv 2509.18001): ``AsyncSAM(tau=0, deterministic=True)`` on the step's
  own batch (:class:`~asam_theory.torch.lookahead.StepBatches`), which with b′ = b is SAM.

The descent batches are drawn once per seed (``torch.randint`` from ``seed``), so every driver
of a seed descends on the same batches from the same initialisation (paired comparisons).  A
hook ``on_step(t, model, history, batch)`` runs before step t's update with the weights
:math:`w_t` in the model and ``history[k]`` = :math:`w_{\max(t-k,0)}` (k = 0..``keep``), so a
measurement sees exactly the iterates the method uses; it must leave the model's weights and
BatchNorm statistics as it found them.

After training the BatchNorm statistics are recomputed at the final weights
(:func:`asam_theory.experiments.training.recalibrate_bn`).  Collapse follows the one rule of
every training path, :func:`asam_theory.experiments.collapse.diagnose`: a loss that turns
non-finite stops the run at that step (reported with the step and the value), and a run whose
last training losses sit at or above :math:`\ln C` (the constant predictor's) with a test
accuracy inside chance's binomial band is *stuck* or *diverged*; the result carries
``collapsed`` (bool), ``collapse`` (the reason, or ``None``), ``collapse_kind`` and
``collapse_step``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from asam_theory.torch import SAM, AsyncSAM
from asam_theory.torch._common import bn_frozen
from asam_theory.torch.lookahead import LookAhead
from asam_theory.validation import check_choice, check_int, check_real

KINDS = ("sgd", "sam", "asyncsam", "lookahead", "sam_micro")


@dataclass(frozen=True)
class Setting:
    """Data, model and base optimizer of one experiment setting.

    ``dataset``: ``"digits"`` or ``"mnist1d"`` (:func:`asam_theory.data.load_dataset`: fixed
    test split, a stratified validation split carved from train, symmetric label noise on the
    training labels only); ``model``: a kind of :func:`asam_theory.experiments.models.
    make_model` (``"cnn-bn"``: the CNN with BatchNorm); SGD with momentum and weight decay."""

    name: str
    dataset: str = "digits"
    model: str = "cnn-bn"
    label_noise: float = 0.2
    steps: int = 600
    batch_size: int = 64
    lr: float = 0.05
    rho: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    width: int | None = None

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, ("digits", "mnist1d"))
        check_real("label_noise", self.label_noise, low=0.0, high=0.9, high_open=True)
        check_int("steps", self.steps, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_real("lr", self.lr, low=0.0, low_open=True)
        check_real("rho", self.rho, low=0.0)


#: the settings of the fair-verdicts issue: noisy and clean digits CNN, the MNIST-1D CNN
SETTINGS: tuple[Setting, ...] = (
    Setting("digits-noisy-cnn", "digits", "cnn-bn", 0.2, 600),
    Setting("digits-clean-cnn", "digits", "cnn-bn", 0.0, 600),
    Setting("mnist1d-cnn", "mnist1d", "cnn-bn", 0.2, 2000),
)


@dataclass(frozen=True)
class Driver:
    """A method as trained here: ``kind`` (module docstring), staleness ``tau`` and ascent
    batch ``bprime`` (``None``: the descent batch size b) where the kind has them."""

    name: str
    kind: str
    tau: int = 1
    bprime: int | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        check_int("tau", self.tau, low=0)
        if self.bprime is not None:
            check_int("bprime", self.bprime, low=1)


#: the trajectories of the penalty-fidelity experiment
DRIVERS: tuple[Driver, ...] = (Driver("sgd", "sgd"), Driver("sam", "sam"),
                               Driver("asyncsam", "asyncsam", tau=1, bprime=32),
                               Driver("lookahead", "lookahead", tau=1))


@dataclass
class Data:
    """Tensors of a prepared data set (float features, int64 labels)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    input_shape: tuple[int, ...]


def load(setting: Setting, seed: int, dtype: torch.dtype = torch.float32) -> Data:
    """The setting's data for run ``seed`` as tensors."""
    from asam_theory.data import load_dataset

    ds = load_dataset(setting.dataset, seed=seed, label_noise=setting.label_noise)
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)  # noqa: E731
    i = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    return Data(f(ds.x_train), i(ds.y_train), f(ds.x_val), i(ds.y_val), f(ds.x_test),
                i(ds.y_test), ds.n_classes, tuple(ds.input_shape))


def build(setting: Setting, data: Data, seed: int, dtype: torch.dtype = torch.float32
          ) -> nn.Module:
    """The setting's model initialised from ``seed``."""
    from asam_theory.experiments.models import make_model

    return make_model(setting.model, data.input_shape, data.n_classes, width=setting.width,
                      seed=seed).to(dtype).train()


def descent_indices(n: int, setting: Setting, seed: int) -> torch.Tensor:
    """``(steps, b)`` indices of the descent batches of run ``seed`` (with replacement)."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, n, (setting.steps, setting.batch_size), generator=gen)


class _Stream:
    """Independent ascent batches: ``(x, y)`` of the asked size drawn from ``seed``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, seed: int) -> None:
        self.x, self.y = x, y
        self.gen = torch.Generator().manual_seed(int(seed))

    def __call__(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.y), (size,), generator=self.gen)
        return self.x[idx], self.y[idx]


def _stepper(driver: Driver, model: nn.Module, setting: Setting, data: Data, seed: int,
             batches: Sequence[tuple[torch.Tensor, torch.Tensor]]
             ) -> tuple[Callable[[int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]], Any]:
    """``(step(t) -> (x, y, loss), optimizer)``: the one place the drivers meet the
    optimizers of :mod:`asam_theory.torch`."""
    kw = dict(lr=setting.lr, momentum=setting.momentum, weight_decay=setting.weight_decay)
    b = setting.batch_size
    bp = b if driver.bprime is None else min(driver.bprime, b)
    if driver.kind == "sgd":
        opt: Any = torch.optim.SGD(model.parameters(), **kw)

        def step(t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x, y = batches[t]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return x, y, loss.detach()

        return step, opt
    if driver.kind == "sam":
        opt = SAM(model.parameters(), torch.optim.SGD, rho=setting.rho, **kw)

        def step(t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x, y = batches[t]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.first_step(zero_grad=True)
            with bn_frozen(model):
                F.cross_entropy(model(x), y).backward()
            opt.second_step(zero_grad=True)
            return x, y, loss.detach()

        return step, opt
    common = dict(rho=setting.rho, ascent_batch_size=bp, deterministic=True, **kw)
    if driver.kind == "lookahead":
        la = LookAhead(iter(batches), tau=driver.tau)
        opt = AsyncSAM.for_model(model, F.cross_entropy, torch.optim.SGD, tau=driver.tau,
                                 ascent_batches=la, **common)

        def step(t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x, y = next(la)
            return x, y, opt.step(x, y)

        return step, opt
    if driver.kind == "asyncsam":
        opt = AsyncSAM.for_model(model, F.cross_entropy, torch.optim.SGD, tau=driver.tau,
                                 ascent_batches=_Stream(data.x_train, data.y_train, seed + 1),
                                 **common)
    else:  # sam_micro: tau 0 on the step's own batch
        opt = AsyncSAM.for_model(model, F.cross_entropy, torch.optim.SGD, tau=0, **common)

    def step(t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = batches[t]
        return x, y, opt.step(x, y)

    return step, opt


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode (the model's mode restored)."""
    was = model.training
    model.eval()
    acc = float((model(x).argmax(1) == y).double().mean())
    model.train(was)
    return acc


OnStep = Callable[[int, nn.Module, Sequence[list[torch.Tensor]], tuple[torch.Tensor,
                                                                        torch.Tensor]], None]


def train(setting: Setting, driver: Driver, seed: int, *, data: Data | None = None,
          on_step: OnStep | None = None, keep: int = 4,
          dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Train ``driver`` on ``setting`` for run ``seed``; returns ``{"model", "data",
    "test_acc", "val_acc", "losses", "final_loss", "collapsed", "collapse", "collapse_kind",
    "collapse_step"}`` (module docstring).  ``on_step`` sees :math:`w_t` and the last ``keep``
    iterates before each update."""
    from asam_theory.experiments.collapse import STUCK_WINDOW, diagnose
    from asam_theory.experiments.training import recalibrate_bn

    keep = check_int("keep", keep, low=0)
    data = load(setting, seed, dtype) if data is None else data
    model = build(setting, data, seed, dtype)
    idx = descent_indices(len(data.y_train), setting, seed)
    batches = [(data.x_train[i], data.y_train[i]) for i in idx]
    step, opt = _stepper(driver, model, setting, data, seed, batches)
    params = [p for p in model.parameters() if p.requires_grad]
    history: deque[list[torch.Tensor]] = deque(maxlen=keep + 1)
    losses: list[float] = []
    try:
        for t in range(setting.steps):
            if on_step is not None:
                history.appendleft([p.detach().clone() for p in params])
                padded = list(history) + [history[-1]] * (keep + 1 - len(history))
                on_step(t, model, padded, batches[t])
            _, _, loss = step(t)
            value = float(loss)
            losses.append(value)
            if not math.isfinite(value):
                break  # diverged: reported (step, value) by the collapse diagnosis
    finally:
        if hasattr(opt, "close"):
            opt.close()
    recalibrate_bn(model, data.x_train)
    test = accuracy(model, data.x_test, data.y_test)
    freqs = (torch.bincount(data.y_test, minlength=data.n_classes).double()
             / len(data.y_test)).tolist()
    collapse = diagnose(losses, test, len(data.y_test), data.n_classes, class_freqs=freqs)
    return {"model": model, "data": data, "test_acc": test,
            "val_acc": accuracy(model, data.x_val, data.y_val), "losses": losses,
            "final_loss": float(np.mean(losses[-STUCK_WINDOW:])),
            "collapsed": collapse is not None,
            "collapse": None if collapse is None else collapse.reason,
            "collapse_kind": None if collapse is None else collapse.kind,
            "collapse_step": None if collapse is None else collapse.step}
