"""AsyncSAM in a training stack (:mod:`asam_theory.torch.stack`), for its three direction
sources — the deterministic emulation, the worker thread and the worker process — at
``max_staleness = τ`` (see :mod:`asyncsam_cases`): autocast reaching the ascent, GradScaler
(power-of-two scale, skipped steps), clipping, gradient accumulation, ``channels_last``,
``add_param_group``, ``torch.compile``, LR schedulers and ``state_dict`` with all of them.

Every test leaves no worker thread or process behind and no autocast switched on."""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing as mp
import os
import time

import pytest
import torch
import torch.nn.functional as F
from asam_threads import worker_threads
from asyncsam_cases import (
    BACKENDS,
    FixedBatch,
    LayoutLoss,
    RecordingLoss,
    build,
    convnet,
    image_batches,
    records,
    reference,
    weights,
)
from stack_cases import ClipThenSGD, N, batches, fixed_scaler, mlp
from torch import nn

from asam_theory.torch import AsyncSAM, WorkerOptions

SCALE = 2.0**12
CL = torch.channels_last
#: float64, the same operations in another order or fused (``torch.add(w, u, alpha=ρ)``
#: against ``w + ρ·u``, the descent gradients summed in another order): rounding of order
#: 1e-16 per operation over 5 steps of a 2-layer MLP; 1e-12 is a wide margin that any wrong
#: step (a direction of another version, a missed skip) exceeds by orders of magnitude
RTOL = 1e-12


def _workers() -> set[int]:
    return {p.pid for p in mp.active_children() if p.name == "asam-ascent"}


@pytest.fixture(autouse=True)
def clean_stack():
    """No autocast switched on, no worker thread or process left (within 10 s)."""
    assert not torch.is_autocast_enabled("cpu")
    before = _workers()
    yield
    assert not torch.is_autocast_enabled("cpu")
    gc.collect()
    deadline = time.monotonic() + 10.0
    while (worker_threads() or _workers() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_threads() == [] and _workers() - before == set()


def _assert_same(a, b):
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q), float((p - q).abs().max())


def _assert_close(a, b, rtol=RTOL):
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p, q, rtol=rtol, atol=rtol * float(q.abs().max()))


def _moved(a, b) -> bool:
    return any(not torch.equal(p, q) for p, q in zip(a, b, strict=True))


def _step(opt, model, x, y, form, scaler=None, descent_inf=False):
    """One step in the batch form (``opt.step(x, y)``) or the closure form; ``descent_inf``
    makes the closure's loss inf (the descent pass only)."""
    if form == "batch":
        return opt.step(x, y, scaler=scaler)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if descent_inf:
            loss = loss * float("inf")
        (loss if scaler is None else scaler.scale(loss)).backward()
        return loss

    return opt.step(closure, scaler=scaler)


def _ascent(dtype=torch.float32) -> FixedBatch:
    """The closure form's ascent stream: one fixed batch (the step batches reach the ascent
    only through the batch form)."""
    x, y = batches(1, dtype, seed=7)[0]
    return FixedBatch(x, y)


# -- autocast -----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_bfloat16_reaches_the_ascent_with_the_state_of_its_step(backend, tmp_path):
    """The ascent at w_t runs under the autocast of step t (same dtype), in the worker thread,
    the worker process or the main thread: with autocast switched on and off from step to
    step, each ascent pass sees its own step's state (the process backend receives it only
    when it changes), and the descent passes see theirs."""
    path = str(tmp_path / "calls.jsonl")
    pattern = [True, False, False, True, True, False]
    model = mlp()
    with build(model, backend, loss_fn=RecordingLoss(path), ascent_batch_size=4) as opt:
        for on, (x, y) in zip(pattern, batches(len(pattern)), strict=True):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=on):
                opt.step(x, y)
    calls = records(path)
    descent = [c for c in calls if c["n"] == N]
    ascent = [c for c in calls if c["n"] == 4]
    assert [c["enabled"] for c in descent] == pattern
    # τ = 1: the deterministic mode computes the direction at w_{max(t−1, 0)} at every step t;
    # a worker computes each version v once, in order, and steps 1..5 use versions 0..4
    versions = ([max(t - 1, 0) for t in range(len(pattern))] if backend == "deterministic"
                else list(range(len(pattern) - 1)))
    assert len(ascent) >= len(versions)
    for c, v in zip(ascent, versions, strict=False):
        assert c["enabled"] == pattern[v]
        assert c["out"] == ("torch.bfloat16" if pattern[v] else "torch.float32")
        if pattern[v]:
            assert c["dtype"] == "torch.bfloat16"
    main = (os.getpid(), "MainThread")
    where = {(c["pid"], c["thread"]) for c in ascent}
    if backend == "deterministic":
        assert where == {main}
    elif backend == "thread":
        assert where == {(main[0], "asam-ascent")}
    else:
        assert all(pid != main[0] for pid, _ in where)


#: bfloat16 keeps 8 significant bits (u = 2⁻⁸); one AsyncSAM step of this MLP rounds the
#: inputs of 3 matrix products per pass over 2 passes (the ascent and the descent), about 6u ≈
#: 0.023 of relative error in the update when every rounding adds up; 0.05 leaves a factor 2
#: (the bound of tests/torch/test_stack_amp.py, fixed before any run)
BF16_UPDATE_RTOL = 0.05


@pytest.mark.parametrize("backend", ["deterministic", "thread"])
def test_autocast_bfloat16_step_is_the_float32_step_to_bfloat16_precision(backend):
    x, y = batches(1)[0]
    updates = []
    for amp in (True, False):
        model = mlp()
        w0 = weights(model)
        with build(model, backend) as opt, \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            opt.step(x, y)
        assert all(p.dtype == torch.float32 and torch.isfinite(p).all()
                   for p in model.parameters())
        updates.append([a - b for a, b in zip(weights(model), w0, strict=True)])
    num = sum(float((p - q).double().pow(2).sum()) for p, q in zip(*updates, strict=True))
    den = sum(float(q.double().pow(2).sum()) for q in updates[1])
    assert 0.0 < (num / den) ** 0.5 <= BF16_UPDATE_RTOL


@pytest.mark.parametrize("backend", ["deterministic", "thread"])
def test_autocast_one_region_around_the_loop_sees_the_perturbed_weights(backend):
    """Autocast caches its bfloat16 copy of each weight until the outermost region closes,
    and AsyncSAM re-binds ``p.data`` (w_t + ρu for the descent, then w_t, then the update),
    which does not invalidate it; the optimizer drops the cache at each change, so with an
    outer region enabled, disabled or absent the runs are equal bit for bit — with a forward
    at w_t before each step (a metric), whose cached copy would otherwise make the descent
    run at w_t, and the deterministic ascent at an older version."""
    data = batches(3)
    out = []
    for outer in (True, False, None):
        model = mlp()
        region = (contextlib.nullcontext() if outer is None
                  else torch.autocast("cpu", dtype=torch.bfloat16, enabled=outer))
        with build(model, backend) as opt, region:
            for x, y in data:
                with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
                    model(x)  # a metric at w_t: caches its bfloat16 weights in the region
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    opt.step(x, y)
        out.append(weights(model))
    _assert_same(out[0], out[2])
    _assert_same(out[1], out[2])


# -- GradScaler ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["batch", "closure"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_scaler_power_of_two_equals_unscaled_float32(backend, form):
    """With a scale of 2¹² the weights after every step equal the unscaled run's bit for bit:
    multiplying by a power of two is exact (no overflow or underflow at these magnitudes), so
    unscaling returns the unscaled gradient exactly — tolerance 0."""
    runs = []
    for scale in (None, SCALE):
        model = mlp()
        scaler = None if scale is None else fixed_scaler(scale)
        ascent = _ascent() if form == "closure" else None
        with build(model, backend, ascent=ascent) as opt:
            trajectory = []
            for x, y in batches(5):
                _step(opt, model, x, y, form, scaler)
                if scaler is not None:
                    scaler.update()
                trajectory.append(weights(model))
        runs.append(trajectory)
        if scaler is not None:
            assert scaler.get_scale() == SCALE and opt.skipped_steps == 0
    for a, b in zip(*runs, strict=True):
        _assert_same(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scaler_injected_inf_skips_exactly_that_step(backend):
    """An inf in the descent loss of step 2 (closure form, float64): that step leaves the
    weights and the base optimizer's state exactly as they were, the scale halves once, and
    the run equals AsyncSAM written out with step 2 skipped (the version still advances:
    version 3 holds the weights of version 2)."""
    data = batches(5, torch.float64)
    ascent = _ascent(torch.float64)
    model = mlp(torch.float64)
    scaler = fixed_scaler(SCALE)
    with build(model, backend, ascent=ascent) as opt:
        for t, (x, y) in enumerate(data):
            before = weights(model)
            momentum = [opt.base_optimizer.state[p].get("momentum_buffer")
                        for p in model.parameters()]
            momentum = [None if m is None else m.clone() for m in momentum]
            _step(opt, model, x, y, "closure", scaler, descent_inf=t == 2)
            scaler.update()
            if t == 2:
                _assert_same(weights(model), before)
                for p, m in zip(model.parameters(), momentum, strict=True):
                    assert torch.equal(opt.base_optimizer.state[p]["momentum_buffer"], m)
                assert scaler.get_scale() == SCALE / 2
            else:
                assert _moved(weights(model), before)
                assert scaler.get_scale() == (SCALE if t < 2 else SCALE / 2)
        assert opt.skipped_steps == 1 and opt.version == 5
        assert opt.staleness_history == [0, 1, 1, 1, 1]
    ref = reference(mlp(torch.float64), [([(ascent.x, ascent.y)], [(x, y)]) for x, y in data],
                    skip={2})
    _assert_close(weights(model), ref[-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_scaler_inf_in_a_batch_skips_its_step_and_the_step_using_its_ascent(backend):
    """The batch form with the step batches as ascent batches (τ = 1): an inf in the batch of
    step 2 makes its descent gradient non-finite (step 2 skipped after its pass) and the
    direction at version 2, computed on that batch, non-finite — step 3, which uses it, is
    skipped before its descent pass (``step`` returns ``None``) and the scaler records the
    overflow; two halvings in all, and the run equals the written-out AsyncSAM with steps 2
    and 3 skipped."""
    data = batches(6, torch.float64)
    bad = data[2][0].clone()
    bad[:, 0] = float("inf")
    data[2] = (bad, data[2][1])
    model = mlp(torch.float64)
    scaler = fixed_scaler(SCALE)
    returned, scales = [], []
    with build(model, backend) as opt:
        for x, y in data:
            returned.append(opt.step(x, y, scaler=scaler))
            scaler.update()
            scales.append(scaler.get_scale())
        assert opt.skipped_steps == 2 and opt.version == 6
    assert [r is None for r in returned] == [False, False, False, True, False, False]
    assert scales == [SCALE, SCALE, SCALE / 2, SCALE / 4, SCALE / 4, SCALE / 4]
    ref = reference(mlp(torch.float64), [([(x, y)], [(x, y)]) for x, y in data], skip={2, 3})
    _assert_close(weights(model), ref[-1])


def test_scaler_rejects_other_objects():
    model = mlp()
    with build(model, "deterministic") as opt:
        x, y = batches(1)[0]
        with pytest.raises(ValueError, match="scaler must be None or a torch.amp.GradScaler"):
            opt.step(x, y, scaler=2.0**16)


# -- clipping -----------------------------------------------------------------------------------
#: far below this model's gradient norms on these batches, so clipping acts at every step
MAX_NORM = 0.05


@pytest.mark.parametrize("form", ["batch", "closure"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_max_grad_norm_equals_clip_grad_norm_before_the_base_step(backend, form):
    """``max_grad_norm=c`` gives, bit for bit in float64, the run whose base optimizer calls
    ``torch.nn.utils.clip_grad_norm_(params, c)`` first; and differs from the unclipped run."""
    runs = []
    for options in ({"max_grad_norm": MAX_NORM},
                    {"base": functools.partial(ClipThenSGD, max_norm=MAX_NORM)}, {}):
        model = mlp(torch.float64)
        ascent = _ascent(torch.float64) if form == "closure" else None
        with build(model, backend, ascent=ascent, **options) as opt:
            for x, y in batches(4, torch.float64):
                _step(opt, model, x, y, form)
        runs.append(weights(model))
    _assert_same(runs[0], runs[1])
    assert _moved(runs[0], runs[2])


def test_max_grad_norm_clips_the_unscaled_gradient():
    """With a GradScaler the gradient is unscaled before it is clipped: a scale of 2¹² gives
    the unscaled clipped run bit for bit (clipping the scaled gradient to c would leave it
    2¹² times too large, or clip nothing)."""
    runs = []
    for scaler in (None, fixed_scaler(SCALE)):
        model = mlp(torch.float64)
        with build(model, "deterministic", max_grad_norm=MAX_NORM) as opt:
            for x, y in batches(4, torch.float64):
                opt.step(x, y, scaler=scaler)
                if scaler is not None:
                    scaler.update()
        runs.append(weights(model))
    _assert_same(*runs)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), "1"])
def test_max_grad_norm_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="max_grad_norm"):
        build(mlp(), "deterministic", max_grad_norm=bad)


# -- gradient accumulation ----------------------------------------------------------------------
SIZES = (5, 3, 4, 4)  # uneven micro-batches of the 16-sample batch: the weights n_i/n matter


@pytest.mark.parametrize("form", ["batch", "closure"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_accumulate_micro_batches_equal_the_union_step(backend, form):
    """k micro-batches under the step's one perturbation give the step on their union
    (float64, to rounding: ``RTOL``), with a GradScaler (2¹⁰) on the accumulated run: the batch
    form ``opt.step(x, y, micro_batches=3)`` (sizes 6, 5, 5), the closure form with
    :func:`~asam_theory.torch.accumulate` over uneven micro-batches inside the closure.  The
    ascent stays on its own batch (the step batch, whole, or the fixed ascent batch)."""
    from asam_theory.torch import accumulate

    data = batches(4, torch.float64)
    ascent = _ascent(torch.float64) if form == "closure" else None
    model, ref = mlp(torch.float64), mlp(torch.float64)
    scaler = fixed_scaler(2.0**10)
    with build(model, backend, ascent=ascent) as opt, \
            build(ref, backend, ascent=ascent) as ref_opt:
        for x, y in data:
            if form == "batch":
                loss = opt.step(x, y, micro_batches=3, scaler=scaler)
            else:
                micro = list(zip(x.split(list(SIZES)), y.split(list(SIZES)), strict=True))

                def closure(micro=micro):
                    opt.zero_grad()
                    return accumulate(lambda b: F.cross_entropy(model(b[0]), b[1]), micro,
                                      scaler=scaler)

                loss = opt.step(closure, scaler=scaler)
            scaler.update()
            ref_loss = _step(ref_opt, ref, x, y, form)
            torch.testing.assert_close(loss, ref_loss.detach(), rtol=RTOL, atol=0)
            _assert_close(weights(model), weights(ref))
        assert opt.skipped_steps == 0


def test_accumulate_option_errors():
    model = mlp()
    x, y = batches(1)[0]
    with build(model, "deterministic") as opt:
        with pytest.raises(ValueError, match="micro_batches"):
            opt.step(x, y, micro_batches=0)
        with pytest.raises(ValueError, match="micro_batches"):
            opt.step(x, y, micro_batches=N + 1)
        with pytest.raises(ValueError, match="micro_batches is an option of the batch form"):
            opt.step(lambda: None, micro_batches=2)
        with pytest.raises(ValueError, match="a closure step gives its worker no batch"):
            opt.step(lambda: None)  # for_model's step batches come with step(x, y) only
        assert opt.version == 0

        # with the step's batch recorded first, the closure form is the batch form's step
        def closure():
            opt.zero_grad()
            out = F.cross_entropy(model(x), y)
            out.backward()
            return out

        opt.step_batches.put(opt.version, (x, y))
        assert opt.step(closure) is not None
        assert opt.version == 1


# -- channels_last, add_param_group, compile ----------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_channels_last_kept_in_the_replica_and_the_snapshots(backend, tmp_path):
    """A channels_last conv model: the weights stay channels_last across steps, the replica the
    ascent loss receives has channels_last weights (in the worker thread or process too),
    the snapshot buffers (thread: the pool; process: the shared rings) and the perturbed
    buffers keep the layout, and the run equals the contiguous model's to float64 rounding
    (conv kernels of the two layouts sum in different orders: 1e-10 relative)."""
    data = image_batches(4)
    ax, ay = image_batches(1, seed=9)[0]
    runs, kept = [], []
    for layout in (CL, torch.contiguous_format):
        model = convnet().to(memory_format=layout)
        path = tmp_path / f"layout-{layout}.txt"
        det = backend == "deterministic"
        opt = AsyncSAM(model.parameters(), torch.optim.SGD, rho=0.05, tau=1, lr=0.1,
                       momentum=0.9, ascent_loss=LayoutLoss(str(path)),
                       ascent_batches=FixedBatch(ax, ay), model=model, deterministic=det,
                       worker=WorkerOptions(backend="thread" if det else backend,
                                            max_staleness=1))
        four_d = [p for p in model.parameters() if p.dim() == 4]
        with opt:
            for x, y in data:
                x = x.contiguous(memory_format=layout)
                _step(opt, model, x, y, "closure")
                assert all(p.is_contiguous(memory_format=layout) for p in four_d)
            if layout is CL:
                idx = [i for i, p in enumerate(model.parameters()) if p.dim() == 4]
                buffers = [opt._perturbed]
                if backend == "thread":
                    buffers += opt._directions.worker.shared.pool
                elif backend == "process":
                    buffers += opt._directions._sviews + opt._directions._dviews
                for bufs in buffers:
                    assert all(bufs[i].is_contiguous(memory_format=CL) for i in idx)
        runs.append(weights(model))
        kept.append(set(path.read_text().split()))
    assert kept == [{"1"}, {"0"}]  # the check tells the layouts apart
    _assert_close(runs[0], runs[1], rtol=1e-10)


def test_add_param_group_is_refused_with_the_reason():
    model = mlp()
    with build(model, "deterministic") as opt:
        with pytest.raises(ValueError, match="AsyncSAM does not support add_param_group.*"
                                             "replica and snapshot buffers"):
            opt.add_param_group({"params": [nn.Parameter(torch.zeros(3))]})
        assert len(opt.param_groups) == 1
    groups = [{"params": list(model[0].parameters())},
              {"params": list(model[2].parameters()), "lr": 0.03}]
    with AsyncSAM(groups, torch.optim.SGD, ascent_loss=lambda m, b: m[0].weight.sum(),
                  model=model, deterministic=True, lr=0.1) as opt:
        assert [g["lr"] for g in opt.param_groups] == [0.1, 0.03]


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_aot_eager_asyncsam_with_batchnorm_trains_like_eager(backend):
    """``torch.compile(model)`` (aot_eager: dynamo's graph capture and AOT autograd, no kernel
    compilation) with BatchNorm: AsyncSAM descends through the compiled module while its
    replica (the worker process's pickled model too) is the original module; 3 steps equal
    the eager run to float32 rounding (aot_eager runs the same aten operations), and the
    running statistics are left alone in the compiled model too."""
    data = batches(3)
    runs = []
    for compiled in (True, False):
        model = _bn_net()
        stats = (model[1].running_mean.clone(), model[1].running_var.clone())
        wrapped = torch.compile(model, backend="aot_eager") if compiled else model
        with build(wrapped, backend) as opt:
            assert opt.module is model
            if opt._computer is not None:  # the replica: a copy of the module, not the wrapper
                assert type(opt._computer.replica) is nn.Sequential
            for x, y in data:
                loss = opt.step(x, y)
        assert torch.isfinite(loss)
        assert torch.equal(model[1].running_mean, stats[0])
        assert torch.equal(model[1].running_var, stats[1])
        runs.append(weights(model))
    _assert_close(runs[0], runs[1], rtol=1e-5)


def _inductor_available() -> bool:
    import shutil

    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


@pytest.mark.skipif(not _inductor_available(), reason="inductor needs a C++ compiler")
def test_compile_inductor_asyncsam_trains_like_eager():
    """``torch.compile`` with inductor (C++ kernels on the CPU), the thread backend: 3 steps
    equal the eager steps to inductor's float32 kernel rounding (rtol 1e-4, as for SAM in
    tests/torch/test_stack_compile.py)."""
    data = batches(3)
    runs = []
    for compiled in (True, False):
        model = mlp()
        wrapped = torch.compile(model, backend="inductor") if compiled else model
        with build(wrapped, "thread") as opt:
            for x, y in data:
                opt.step(x, y)
        runs.append(weights(model))
    _assert_close(runs[0], runs[1], rtol=1e-4)


# -- schedulers and state_dict with all of the above --------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_autocast_scaler_max_grad_norm_scheduler_state_dict_resume(backend):
    """The whole stack at once — bfloat16 autocast around the steps, a GradScaler with an inf
    in the batch of step 1 (steps 1 and 2 skipped), ``max_grad_norm`` and a StepLR schedule —
    saved after step 3 and resumed into fresh objects (a fresh worker too) continues exactly
    as the uninterrupted run: weights, learning rate, scale, skip count and version."""
    data = batches(6)
    bad = data[1][0].clone()
    bad[:, 0] = float("inf")
    data[1] = (bad, data[1][1])

    def fresh():
        model = mlp()
        opt = build(model, backend, max_grad_norm=0.3)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return model, opt, fixed_scaler(2.0**8), sched

    def steps(objs, ts):
        model, opt, scaler, sched = objs
        for t in ts:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                opt.step(*data[t], scaler=scaler)
            scaler.update()
            sched.step()

    full = fresh()
    part = fresh()
    resumed = fresh()
    try:
        steps(full, range(6))
        steps(part, range(4))
        saved = [o.state_dict() for o in part]
        for o, sd in zip(resumed, saved, strict=True):
            o.load_state_dict(sd)
        steps(resumed, range(4, 6))
        _assert_same(weights(resumed[0]), weights(full[0]))
        assert resumed[1].param_groups[0]["lr"] == full[1].param_groups[0]["lr"] == 0.1 * 0.5**3
        assert resumed[2].get_scale() == full[2].get_scale() == 2.0**6
        assert resumed[1].skipped_steps == full[1].skipped_steps == 2
        assert resumed[1].version == full[1].version == 6
    finally:
        for objs in (full, part, resumed):
            objs[1].close()
