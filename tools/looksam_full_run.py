"""LookSAM over a whole leaderboard run: our torch face against rollovd/LookSAM, step for step.

Usage::

    python tools/looksam_full_run.py /path/to/LookSAM-checkout [--dataset mnist1d --model cnn
        --seed 1 --lr 0.05 --rho 0.05 --dtype float64 --out looksam_full_run.json]

Trains the leaderboard's cell (``asam_theory.experiments.leaderboard``: the data set's split
and 20 % label noise for ``seed``, the model initialised from ``seed``, batch 64 drawn by the
same seeded sampler, SGD with momentum 0.9 and weight decay 5e-4, the cell's steps) three
times from the same start on the same batches:

* ``reference`` — rollovd/LookSAM (commit 8f5c8ef, unofficial; no official code is public),
  stepped as its README says: ``loss.backward(); opt.step(t=t, samples=x, targets=y)``;
* ``ours_per_tensor`` — :class:`asam_theory.torch.LookSAM` with ``decomposition="per_tensor",
  eps=1e-8`` (the reference's arithmetic);
* ``ours_global`` — :class:`asam_theory.torch.LookSAM` with its defaults (global
  decomposition, eps 1e-12): what the leaderboard runs;

all at the catalogue's k = 5, α = 0.7.  Writes, per run, the training loss every step, the
test accuracy, the largest weight difference to the reference along the run (and when it first
exceeds 1e-10, 1e-6, 1e-3, 0.1: the growth of rounding differences in a chaotic run), and for
ours the
refresh steps' ``|g_v| / |g|`` (how much the reused term α|g| g_v/|g_v| amplifies the SAM
gradient's orthogonal part, which has norm |g_v|), on every 50th step's first reuse step the
reuse term e = α|g| g_v/|g_v| against SAM's penalty gradient at the same weights and batch,
p_SAM = ∇f_B(w + ρu_B) − ∇f_B(w) (:mod:`asam_theory.experiments.penalty_real`): |e|/|p_SAM|
and cos(e, p_SAM), and the share of ReLU units that are dead on the training set at the end
(zero on every example).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from asam_theory.data import load_dataset
from asam_theory.experiments.flatness import functional_loss
from asam_theory.experiments.leaderboard import LeaderboardConfig
from asam_theory.experiments.models import make_model
from asam_theory.experiments.penalty_real import penalty_gradient, unit_direction
from asam_theory.experiments.training import IndexSampler, accuracy, tensor_data
from asam_theory.torch import LookSAM

K, ALPHA = 5, 0.7


def _setting(a: argparse.Namespace, dtype: torch.dtype):
    cfg = LeaderboardConfig()
    ds = load_dataset(a.dataset, seed=a.seed, label_noise=cfg.label_noise)
    data = tensor_data(ds).to("cpu", dtype)
    model = make_model(a.model, ds.input_shape, ds.n_classes, width=cfg.width.get(a.model),
                       seed=a.seed).to(dtype)
    return cfg, data, model


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def dead_relu_share(model: nn.Module, x: torch.Tensor) -> float:
    """Share of ReLU output units (channels × positions) that are zero on every example."""
    dead, total = [], []

    def hook(_m: nn.Module, _i: tuple, out: torch.Tensor) -> None:
        alive = (out > 0).any(dim=0)
        dead.append(int((~alive).sum()))
        total.append(alive.numel())

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sum(dead) / max(sum(total), 1)


def _reuse_against_sam(model: nn.Module, opt: LookSAM, x: torch.Tensor, y: torch.Tensor,
                       rho: float) -> tuple[float, float]:
    """(|e| / |p_SAM|, cos(e, p_SAM)) at the current weights and batch, before the step; e is
    the reuse term the step is about to add, p_SAM SAM's penalty gradient."""
    loss, params = functional_loss(model)
    g = [p.grad.detach() for p in model.parameters()]
    g_v = [opt.state[p]["g_v"] for p in model.parameters()]
    gn = math.sqrt(sum(float((t.double() ** 2).sum()) for t in g))
    vn = math.sqrt(sum(float((t.double() ** 2).sum()) for t in g_v))
    e = [ALPHA * gn / (vn + opt.eps) * v for v in g_v]
    p_sam = penalty_gradient(loss, params, unit_direction(loss, params, (x, y)), rho, (x, y))
    en = math.sqrt(sum(float((t.double() ** 2).sum()) for t in e))
    pn = math.sqrt(sum(float((t.double() ** 2).sum()) for t in p_sam))
    dot = sum(float((u.double() * v.double()).sum()) for u, v in zip(e, p_sam, strict=True))
    return en / pn, dot / (en * pn)


def run(a: argparse.Namespace, which: str, ref_traj: list[torch.Tensor] | None,
        dtype: torch.dtype) -> dict:
    cfg, data, model = _setting(a, dtype)
    sampler = IndexSampler(data.x_train, data.y_train, a.seed)
    kw = dict(lr=a.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if which == "reference":
        spec = importlib.util.spec_from_file_location("rollovd_looksam",
                                                      Path(a.checkout) / "looksam.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        opt = mod.LookSAM(k=K, alpha=ALPHA, model=model, base_optimizer=torch.optim.SGD,
                          criterion=nn.CrossEntropyLoss(), rho=a.rho, **kw)
    else:
        extra = (dict(decomposition="per_tensor", eps=1e-8) if which == "ours_per_tensor"
                 else {})
        opt = LookSAM(model.parameters(), torch.optim.SGD, rho=a.rho, k=K, alpha=ALPHA,
                      model=model, **extra, **kw)
    losses, traj, ratio, devs, amp = [], [], [], [], []
    steps = a.steps or cfg.steps[a.dataset]
    for t in range(steps):
        x, y = sampler(cfg.batch_size)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        if which == "reference":
            opt.step(t=t, samples=x, targets=y, zero_sam_grad=True, zero_grad=True)
        else:
            if t % K == 0:
                g = [p.grad.detach().clone() for p in model.parameters()]

            def closure(x: torch.Tensor = x, y: torch.Tensor = y) -> torch.Tensor:
                out = F.cross_entropy(model(x), y)
                out.backward()
                return out

            if t % K == 1 and t % 50 == 1 and opt.decomposition == "global":
                amp.append(_reuse_against_sam(model, opt, x, y, a.rho))
            opt.step(closure)
            if t % K == 0:
                gv = [opt.state[p]["g_v"] for p in model.parameters()]
                gn = math.sqrt(sum(float((gi.double() ** 2).sum()) for gi in g))
                vn = math.sqrt(sum(float((v.double() ** 2).sum()) for v in gv))
                ratio.append(vn / gn if gn > 0 else float("nan"))
        losses.append(float(loss.detach()))
        w = _flat(model)
        if ref_traj is None:
            traj.append(w.clone())
        else:
            devs.append(float((w - ref_traj[t]).abs().max()))
    out = {"run": which, "test_acc": accuracy(model, data.x_test, data.y_test),
           "loss_first_20": float(np.mean(losses[:20])),
           "loss_last_20": float(np.mean(losses[-20:])),
           "loss_max": float(np.max(losses)),
           "loss_every_100": [float(np.mean(losses[i:i + 100]))
                              for i in range(0, len(losses), 100)],
           "nonfinite_steps": int(sum(not math.isfinite(v) for v in losses)),
           "dead_relu_share_end": dead_relu_share(model, data.x_train)}
    if amp:
        out.update(reuse_over_p_sam_median=float(np.median([r for r, _ in amp])),
                   reuse_cos_p_sam_median=float(np.median([c for _, c in amp])),
                   reuse_vs_p_sam=amp)
    if ratio:
        out.update(gv_over_g_median=float(np.median(ratio)),
                   gv_over_g_quartiles=[float(np.quantile(ratio, q)) for q in (0.25, 0.75)],
                   reuse_amplification_median=ALPHA / float(np.median(ratio)))
    if ref_traj is None:
        out["trajectory"] = traj
    else:
        out["max_weight_diff_to_reference"] = max(devs)
        out["weight_diff_at_step"] = {str(t): devs[t] for t in (0, 9, 99, 499, 999)
                                      if t < len(devs)}
        out["first_step_weight_diff_above"] = {
            f"{th:g}": next((t for t, d in enumerate(devs) if d > th), None)
            for th in (1e-10, 1e-6, 1e-3, 1e-1)}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkout", help="a checkout of rollovd/LookSAM (commit 8f5c8ef)")
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--model", default="cnn")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--rho", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=0, help="0: the cell's steps")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--out", default="looksam_full_run.json")
    a = p.parse_args()
    torch.set_num_threads(1)
    dtype = getattr(torch, a.dtype)
    ref = run(a, "reference", None, dtype)
    traj = ref.pop("trajectory")
    rows = [ref] + [run(a, w, traj, dtype) for w in ("ours_per_tensor", "ours_global")]
    Path(a.out).write_text(json.dumps({"args": vars(a), "k": K, "alpha": ALPHA,
                                       "runs": rows}, indent=1))
    for r in rows:
        print(json.dumps({k: v for k, v in r.items() if k != "loss_every_100"}))


if __name__ == "__main__":
    main()
