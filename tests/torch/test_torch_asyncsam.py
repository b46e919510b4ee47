"""AsyncSAM (asam_theory.torch): numerics, equivalences, validation, BatchNorm, state_dict."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from asam_theory.engine import simulate
from asam_theory.experiments.training import IndexSampler, classification_loss
from asam_theory.methods import AsyncSAM as NpAsyncSAM
from asam_theory.problems import Quadratic
from asam_theory.torch import SAM, AsyncSAM, WorkerOptions, bn_frozen

# ----------------------------------------------------------------------------- helpers


class QuadraticModule(nn.Module):
    """f(w) = ½ (w − x*)ᵀ H (w − x*) + f*, the numpy Quadratic written as a torch module."""

    def __init__(self, p: Quadratic, x0: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("H", torch.tensor(p.hessian, dtype=torch.float64))
        self.register_buffer("xstar", torch.tensor(p.minimizer, dtype=torch.float64))
        self.f_star = float(p.f_star)
        self.w = nn.Parameter(torch.tensor(x0, dtype=torch.float64))

    def forward(self) -> torch.Tensor:
        r = self.w - self.xstar
        return 0.5 * r @ (self.H @ r) + self.f_star


def quad_loss(model: QuadraticModule, batch: object) -> torch.Tensor:
    return model()


def run_quadratic_torch(p: Quadratic, x0: np.ndarray, steps: int, deterministic: bool,
                        **opt_kw: object) -> np.ndarray:
    model = QuadraticModule(p, x0)
    traj = [model.w.detach().numpy().copy()]
    worker = WorkerOptions(max_staleness=opt_kw.pop("max_staleness", None))
    with AsyncSAM(model.parameters(), torch.optim.SGD, ascent_loss=quad_loss, model=model,
                  deterministic=deterministic, worker=worker, **opt_kw) as opt:
        for _ in range(steps):
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = model()
                loss.backward()
                return loss

            opt.step(closure)
            traj.append(model.w.detach().numpy().copy())
    return np.array(traj)


def numpy_reference(p: Quadratic, x0: np.ndarray, steps: int, lr: float, rho: float, tau: int,
                    momentum: float = 0.0) -> np.ndarray:
    """s = max(t−τ, 0); u = ∇f(w_s)/(‖∇f(w_s)‖ + 1e-12); w ← SGD(w, ∇f(w + ρu))."""
    H, xs = p.hessian, p.minimizer
    xs_hist = [np.array(x0, dtype=float)]
    buf = None
    for t in range(steps):
        w = xs_hist[-1]
        gs = H @ (xs_hist[max(t - tau, 0)] - xs)
        u = gs / (np.linalg.norm(gs) + 1e-12)
        g = H @ (w + rho * u - xs)
        buf = g if buf is None else momentum * buf + g
        xs_hist.append(w - lr * (buf if momentum else g))
    return np.array(xs_hist)


PROBLEM = Quadratic(eigenvalues=[4.0, 2.0, 1.0, 0.5], rotate=True, shift=True, seed=0)
X0 = np.ones(4)

# ----------------------------------------------------------------------------- engine equivalence


@pytest.mark.parametrize("tau", [0, 1, 2, 5])
def test_deterministic_matches_numpy_engine(tau: int) -> None:
    # Same operations in float64 on a 4-d problem: differences are rounding only (~1e-15 per
    # step, 50 contracting steps), so 1e-10 is a wide but meaningful margin.
    rule = NpAsyncSAM(lr=0.1, rho=0.05, tau=tau)
    traj = simulate(PROBLEM, rule, x0=X0, steps=50, n_seeds=1, seed=0, record=("x",), every=1)
    ref = traj.metrics["x"][:, 0, :]
    got = run_quadratic_torch(PROBLEM, X0, 50, True, lr=0.1, rho=0.05, tau=tau)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-10, rtol=0)
    # and the engine run is not trivial: the iterate moved
    assert np.linalg.norm(ref[-1] - ref[0]) > 0.5


def test_deterministic_matches_numpy_engine_with_momentum() -> None:
    rule = NpAsyncSAM(lr=0.05, rho=0.1, tau=3, momentum=0.9)
    traj = simulate(PROBLEM, rule, x0=X0, steps=60, n_seeds=1, seed=0, record=("x",), every=1)
    got = run_quadratic_torch(PROBLEM, X0, 60, True, lr=0.05, rho=0.1, tau=3, momentum=0.9)
    np.testing.assert_allclose(got, traj.metrics["x"][:, 0, :], atol=1e-10, rtol=0)


@pytest.mark.parametrize("tau", [0, 2])
def test_deterministic_matches_written_recursion(tau: int) -> None:
    ref = numpy_reference(PROBLEM, X0, 40, lr=0.1, rho=0.2, tau=tau, momentum=0.9)
    got = run_quadratic_torch(PROBLEM, X0, 40, True, lr=0.1, rho=0.2, tau=tau, momentum=0.9)
    np.testing.assert_allclose(got, ref, atol=1e-10, rtol=0)
    # staleness matters here: τ = 2 differs from τ = 0 by far more than the tolerance
    other = numpy_reference(PROBLEM, X0, 40, lr=0.1, rho=0.2, tau=2 - tau, momentum=0.9)
    assert np.abs(other - ref).max() > 1e-4


@pytest.mark.parametrize("tau", [0, 1, 3])
def test_threaded_with_max_staleness_tau_equals_deterministic(tau: int) -> None:
    # exact gradients (no batches): with max_staleness = τ the worker must deliver exactly w_{t−τ}
    det = run_quadratic_torch(PROBLEM, X0, 30, True, lr=0.1, rho=0.2, tau=tau)
    thr = run_quadratic_torch(PROBLEM, X0, 30, False, lr=0.1, rho=0.2, tau=tau,
                              max_staleness=tau)
    np.testing.assert_allclose(thr, det, atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- small nets


def make_data(n: int = 256, d: int = 10, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y


def make_net(dtype=torch.float64, bn: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(10, 16)]
    if bn:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.Tanh(), nn.Linear(16, 3)]
    return nn.Sequential(*layers).to(dtype)


def train_asyncsam(model: nn.Module, opt: AsyncSAM, batches: list) -> list[float]:
    losses = []
    for batch in batches:
        def closure(batch=batch) -> torch.Tensor:
            opt.zero_grad()
            loss = classification_loss(model, batch)
            loss.backward()
            return loss

        losses.append(float(opt.step(closure).detach()))
    return losses


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("adaptive", [False, True])
def test_tau0_deterministic_equals_sam_same_batch(adaptive: bool) -> None:
    x, y = make_data()
    batches = [(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(8)]
    m_sam, m_async = make_net(), make_net()
    sam = SAM(m_sam.parameters(), torch.optim.SGD, rho=0.1, adaptive=adaptive, lr=0.1,
              momentum=0.9)
    for b in batches:
        sam.zero_grad()
        classification_loss(m_sam, b).backward()
        sam.first_step(zero_grad=True)
        classification_loss(m_sam, b).backward()
        sam.second_step(zero_grad=True)
    it = iter(batches)  # the ascent batch of step t is the descent batch of step t
    opt = AsyncSAM(m_async.parameters(), torch.optim.SGD, rho=0.1, tau=0, lr=0.1, momentum=0.9,
                   ascent_loss=classification_loss, ascent_batches=it, model=m_async,
                   deterministic=True, adaptive=adaptive)
    train_asyncsam(m_async, opt, batches)
    # identical formulas, float64; the norm is accumulated in the same order -> rounding only
    torch.testing.assert_close(flat(m_async), flat(m_sam), atol=1e-12, rtol=0)
    assert (flat(m_sam) - flat(make_net())).abs().max() > 1e-3


@pytest.mark.parametrize("deterministic", [True, False])
def test_rho0_equals_base_optimizer(deterministic: bool) -> None:
    x, y = make_data()
    batches = [(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(8)]
    m_base, m_async = make_net(), make_net()
    base = torch.optim.SGD(m_base.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for b in batches:
        base.zero_grad()
        classification_loss(m_base, b).backward()
        base.step()
    sampler = IndexSampler(x, y, 1)
    with AsyncSAM(m_async.parameters(), torch.optim.SGD, rho=0.0, tau=1, lr=0.1, momentum=0.9,
                  weight_decay=1e-3, ascent_loss=classification_loss, ascent_batches=sampler,
                  ascent_batch_size=16, model=m_async, deterministic=deterministic) as opt:
        train_asyncsam(m_async, opt, batches)
    # ρ = 0 adds exactly 0·u and restores by copy: bit-identical to the base optimizer
    assert torch.equal(flat(m_async), flat(m_base))


def test_adamw_base_and_scheduler() -> None:
    x, y = make_data()
    m_ref, m = make_net(), make_net()
    batches = [(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(8)]
    ref = torch.optim.AdamW(m_ref.parameters(), lr=1e-2, weight_decay=0.1)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref, step_size=3, gamma=0.5)
    for b in batches:
        ref.zero_grad()
        classification_loss(m_ref, b).backward()
        ref.step()
        ref_sched.step()
    with AsyncSAM(m.parameters(), torch.optim.AdamW, rho=0.0, tau=1, lr=1e-2, weight_decay=0.1,
                  ascent_loss=classification_loss, model=m,
                  ascent_batches=IndexSampler(x, y, 3), ascent_batch_size=8) as opt:
        assert isinstance(opt.base_optimizer, torch.optim.AdamW)
        sched = torch.optim.lr_scheduler.StepLR(opt.base_optimizer, step_size=3, gamma=0.5)
        for b in batches:
            train_asyncsam(m, opt, [b])
            sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5 ** 2)
        assert "exp_avg" in opt.state_dict()["base"]["state"][0]
    torch.testing.assert_close(flat(m), flat(m_ref), atol=1e-12, rtol=0)
    # and with ρ > 0 AdamW+AsyncSAM trains
    m2 = make_net()
    with AsyncSAM(m2.parameters(), torch.optim.AdamW, rho=0.05, lr=1e-2,
                  ascent_loss=classification_loss, model=m2,
                  ascent_batches=IndexSampler(x, y, 3), ascent_batch_size=32) as opt2:
        losses = train_asyncsam(m2, opt2, batches * 6)
    assert np.mean(losses[-8:]) < np.mean(losses[:8])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("deterministic", [True, False])
def test_dtypes(dtype: torch.dtype, deterministic: bool) -> None:
    x, y = make_data(dtype=dtype)
    m = make_net(dtype)
    batches = [(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(8)]
    with AsyncSAM(m.parameters(), torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9,
                  ascent_loss=classification_loss, model=m, ascent_batch_size=16,
                  ascent_batches=IndexSampler(x, y, 1), deterministic=deterministic,
                  worker=WorkerOptions(fidelity_every=2)) as opt:
        losses = train_asyncsam(m, opt, batches * 4)
        res = opt._last_result
        assert res is not None and all(u.dtype == dtype for u in res.direction)
    assert all(p.dtype == dtype for p in m.parameters())
    assert np.isfinite(losses).all() and np.mean(losses[-8:]) < np.mean(losses[:8])
    # u = g/(‖g‖ + 1e-12) has norm 1 − 1e-12/‖g‖; with ‖g‖ ~ 0.1-1 here that is within 1e-9
    # in float64; float32 rounding of the 227-entry sum is ~1e-6 relative
    norm = torch.sqrt(sum((u.double() ** 2).sum() for u in res.direction))
    assert float(norm) == pytest.approx(1.0, rel=1e-5 if dtype == torch.float32 else 1e-9)
    assert all(-1.0 - 1e-6 <= c <= 1.0 + 1e-6 for _, c in opt.fidelity_history)


def test_staleness_recorded_start_convention() -> None:
    got = []
    for det in (True, False):
        m = QuadraticModule(PROBLEM, X0)
        with AsyncSAM(m.parameters(), torch.optim.SGD, lr=0.1, tau=2, ascent_loss=quad_loss,
                      model=m, deterministic=det) as opt:
            for _ in range(6):
                def closure(m: QuadraticModule = m, opt: AsyncSAM = opt) -> torch.Tensor:
                    opt.zero_grad()
                    loss = m()
                    loss.backward()
                    return loss

                opt.step(closure)
            got.append(opt.staleness_history)
    # steps t < τ use w_0 (staleness t), then exactly τ
    assert got[0] == got[1] == [0, 1, 2, 2, 2, 2]


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(rho=-0.1), "rho"),
        (dict(rho=float("nan")), "rho"),
        (dict(tau=-1), "tau"),
        (dict(tau=1.5), "tau"),
        (dict(ascent_batch_size=0), "ascent_batch_size"),
        (dict(ascent_batch_size=-3), "ascent_batch_size"),
        (dict(ascent_batch_size="big"), "ascent_batch_size"),
        (dict(ascent_batch_size="auto"), "ascent_batch_size"),
        (dict(worker=dict(device="tpu")), "device"),
        (dict(worker=dict(device="cuda:7")), "device"),
        (dict(tau=3, worker=dict(max_staleness=2)), "max_staleness"),
        (dict(worker=dict(timeout=0)), "timeout"),
        (dict(worker=dict(num_threads=0)), "num_threads"),
        (dict(worker=dict(fidelity_every=-1)), "fidelity_every"),
        # the former constructor knobs point to where they moved
        (dict(ascent_device="cpu"), "ascent_device"),
        (dict(descent_batch_size=64), "descent_batch_size"),
    ],
)
def test_bad_inputs(kwargs: dict, name: str) -> None:
    m = make_net()
    x, y = make_data()
    base = dict(ascent_loss=classification_loss, model=m, ascent_batches=IndexSampler(x, y, 0))
    with pytest.raises(ValueError, match=name) as info:
        if isinstance(kwargs.get("worker"), dict):
            kwargs = {**kwargs, "worker": WorkerOptions(**kwargs["worker"])}
        AsyncSAM(m.parameters(), torch.optim.SGD, lr=0.1, **{**base, **kwargs})
    msg = str(info.value)
    assert any(s in msg for s in ("must lie in", "must be an integer in", "must be a finite",
                                  ">=", "allowed", "tuned", "> 0", "WorkerOptions")), msg


def test_tuned_functional_and_param_groups() -> None:
    # AsyncSAM.tuned without a model (the loss takes the parameter list) and with param groups
    x, y = make_data()
    w = nn.Parameter(torch.zeros(10, 3, dtype=torch.float64))
    b = nn.Parameter(torch.zeros(3, dtype=torch.float64))

    def loss(params, batch):
        return nn.functional.cross_entropy(batch[0] @ params[0] + params[1], batch[1])

    groups = [{"params": w, "rho": 0.1}, {"params": [b], "rho": 0.0}]
    with AsyncSAM.tuned(groups, torch.optim.SGD, lr=0.1, tau=2, descent_batch_size=32,
                        ascent_loss=loss, ascent_batches=IndexSampler(x, y, 0),
                        candidates=[4, 8, 16]) as opt:
        assert opt.tau == 2 and [g["rho"] for g in opt.param_groups] == [0.1, 0.0]
        assert opt.ascent_batch_size in (4, 8, 16) and opt.tuning.batch_size == 32
        assert set(opt.tuning.ascent_time_s) <= {4, 8, 16}
    for bad, name in [(dict(descent_batch_size=0), "descent_batch_size"),
                      (dict(ascent_batches=iter([])), "callable")]:
        kw = dict(descent_batch_size=32, ascent_loss=loss, ascent_batches=IndexSampler(x, y, 0))
        with pytest.raises(ValueError, match=name):
            AsyncSAM.tuned([w, b], torch.optim.SGD, lr=0.1, **{**kw, **bad})


def test_model_must_own_params() -> None:
    m = make_net()
    other = nn.Linear(3, 3).double()
    with pytest.raises(ValueError, match="model"):
        AsyncSAM(other.parameters(), torch.optim.SGD, lr=0.1, ascent_loss=classification_loss,
                 model=m, deterministic=True)


# ----------------------------------------------------------------------------- BatchNorm


@pytest.mark.parametrize("deterministic", [True, False])
def test_batchnorm_stats_untouched(deterministic: bool) -> None:
    x, y = make_data()
    m = make_net(bn=True)
    bn = m[1]
    m.train()
    with torch.no_grad():  # give the stats non-trivial values first
        m(x)
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    batches = [(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(8)]
    with AsyncSAM(m.parameters(), torch.optim.SGD, rho=0.1, lr=0.1, model=m,
                  ascent_loss=classification_loss, ascent_batches=IndexSampler(x, y, 1),
                  ascent_batch_size=16, deterministic=deterministic,
                  worker=WorkerOptions(fidelity_every=3)) as opt:
        train_asyncsam(m, opt, batches)
        replica_bn = opt._computer.replica[1]
        assert replica_bn.momentum == 0.0
    assert torch.equal(bn.running_mean, before[0])
    assert torch.equal(bn.running_var, before[1])
    assert torch.equal(bn.num_batches_tracked, before[2])
    assert bn.momentum == 0.1  # restored
    # sanity: an ordinary training-mode forward does change them
    m(x[:32])
    assert not torch.equal(bn.running_mean, before[0])


def test_bn_frozen_cumulative_average_mode() -> None:
    bn = nn.BatchNorm1d(4, momentum=None).double()
    bn(torch.randn(8, 4, dtype=torch.float64))
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    with bn_frozen(bn):
        bn(torch.randn(8, 4, dtype=torch.float64) + 3.0)
    for k, v in bn.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert bn.momentum is None


# ----------------------------------------------------------------------------- state_dict


def test_state_dict_round_trip_resumes_identically() -> None:
    x, y = make_data()
    batches = [(x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]) for i in range(16)]

    def build(model: nn.Module) -> tuple[AsyncSAM, IndexSampler]:
        sampler = IndexSampler(x, y, 7)
        opt = AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.1, tau=2, lr=0.1,
                       momentum=0.9, ascent_loss=classification_loss, ascent_batches=sampler,
                       ascent_batch_size=8, model=model, deterministic=True)
        return opt, sampler

    m = make_net()
    opt, sampler = build(m)
    train_asyncsam(m, opt, batches[:8])
    saved_model = {k: v.clone() for k, v in m.state_dict().items()}
    saved_opt = copy.deepcopy(opt.state_dict())  # torch state_dicts reference live buffers
    saved_gen = sampler.gen.get_state()
    train_asyncsam(m, opt, batches[8:])
    final_a = flat(m)

    m2 = make_net(seed=123)  # different init, overwritten by the load
    opt2, sampler2 = build(m2)
    m2.load_state_dict(saved_model)
    opt2.load_state_dict(saved_opt)
    sampler2.gen.set_state(saved_gen)
    train_asyncsam(m2, opt2, batches[8:])
    assert torch.equal(flat(m2), final_a)
    assert opt2.staleness_history == opt.staleness_history
    assert opt2.version == 16


def test_state_dict_threaded_carries_direction() -> None:
    m = QuadraticModule(PROBLEM, X0)
    with AsyncSAM(m.parameters(), torch.optim.SGD, lr=0.1, tau=1,
                  worker=WorkerOptions(max_staleness=2), ascent_loss=quad_loss, model=m) as opt:
        for _ in range(5):
            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = m()
                loss.backward()
                return loss

            opt.step(closure)
        sd = opt.state_dict()
    extra = sd["asyncsam"]
    assert extra["version"] == 5
    src = extra["source"]
    # only what step 5 or later may use: versions in [5 − 2, 4] (5 is not published yet), and
    # version 4, which step 5 prefers, either computed or still to compute
    kept = set(src["directions"]) | set(src["snapshots"])
    assert kept <= {3, 4} and 4 in kept
    assert not set(src["directions"]) & set(src["snapshots"])
    for ts in [*src["directions"].values(), *src["snapshots"].values()]:
        assert len(ts) == 1 and ts[0].shape == (4,)
    m2 = QuadraticModule(PROBLEM, m.w.detach().numpy())
    with AsyncSAM(m2.parameters(), torch.optim.SGD, lr=0.1, tau=1,
                  worker=WorkerOptions(max_staleness=2), ascent_loss=quad_loss,
                  model=m2) as opt2:
        opt2.load_state_dict(sd)

        def closure2() -> torch.Tensor:
            opt2.zero_grad()
            loss = m2()
            loss.backward()
            return loss

        opt2.step(closure2)
        opt2.step(closure2)
        assert opt2.version == 7
        assert all(1 <= s <= 2 for s in opt2.staleness_history[5:])


def test_param_groups_with_own_rho_match_sam() -> None:
    x, y = make_data()
    batches = [(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(6)]

    def groups(m: nn.Module) -> list[dict]:
        return [{"params": m[0].parameters(), "rho": 0.3},
                {"params": m[2].parameters(), "rho": 0.0, "lr": 0.05}]

    m_sam, m_async = make_net(), make_net()
    sam = SAM(groups(m_sam), torch.optim.SGD, rho=0.1, lr=0.1)
    for b in batches:
        sam.zero_grad()
        classification_loss(m_sam, b).backward()
        sam.first_step(zero_grad=True)
        classification_loss(m_sam, b).backward()
        sam.second_step(zero_grad=True)
    opt = AsyncSAM(groups(m_async), torch.optim.SGD, rho=0.1, tau=0, lr=0.1,
                   ascent_loss=classification_loss, ascent_batches=iter(batches),
                   model=m_async, deterministic=True)
    assert [g["rho"] for g in opt.param_groups] == [0.3, 0.0]
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.05]
    train_asyncsam(m_async, opt, batches)
    torch.testing.assert_close(flat(m_async), flat(m_sam), atol=1e-12, rtol=0)


@pytest.mark.parametrize("deterministic", [True, False])
def test_one_descent_pass_per_step(deterministic: bool) -> None:
    """The closure is the step's only descent-device pass: one forward + backward per step
    (what AsyncSAM's SGD-like time per step rests on; a step that evaluates it twice doubles
    the descent's work without changing a weight)."""
    x, y = make_data()
    batches = [(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(5)]
    model, calls = make_net(), []
    with AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.05, tau=1, lr=0.1,
                  ascent_loss=classification_loss, ascent_batches=IndexSampler(x, y, 1),
                  ascent_batch_size=16, model=model, deterministic=deterministic) as opt:
        for batch in batches:
            def closure(batch=batch) -> torch.Tensor:
                calls.append(1)
                opt.zero_grad()
                loss = classification_loss(model, batch)
                loss.backward()
                return loss

            opt.step(closure)
    assert len(calls) == len(batches)
