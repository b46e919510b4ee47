r"""Which gradient-norm penalty a perturbation implements: the minibatch one or the full one.

To first order in ρ, SAM's descent direction on batch :math:`B` is
:math:`\nabla L_B(w)+\rho\nabla\|\nabla L_B(w)\|` — the gradient of
:math:`L_B+\rho\|\nabla L_B\|`, so on average SAM penalises the *minibatch* gradient norm
:math:`\mathbb E_B\|\nabla L_B(w)\|` (the "m-sharpness" of Andriushchenko & Flammarion, ICML
2022, arXiv:2206.06232).  A perturbation from an *independent* batch :math:`A` gives
:math:`\nabla L_B(w)+\rho\nabla^2L_B(w)\,\nabla L_A(w)/\|\nabla L_A(w)\|`; for a large ascent
batch :math:`\nabla L_A\to\nabla L` and the correction becomes
:math:`\rho\nabla^2L\,\nabla L/\|\nabla L\|=\rho\nabla\|\nabla L\|` — the *full* gradient norm.
The two penalties differ most near a stationary point of :math:`L`: there
:math:`\|\nabla L\|\to0` while :math:`\mathbb E_B\|\nabla L_B\|` stays of the order of the
gradient noise :math:`\sqrt{\operatorname{tr}\Sigma(w)\,(n-b)/((n-1)b)}` (Jensen:
:math:`\mathbb E_B\|\nabla L_B\|\ge\|\nabla L\|` always).

:func:`penalty_norms` evaluates both on a finite sum of the problem zoo, exactly where the
batches can be enumerated and by Monte Carlo otherwise.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from asam_theory.problems.base import FiniteSum
from asam_theory.validation import check_int

#: enumerate every batch when there are at most this many (else draw ``n_draws``)
MAX_ENUMERATED = 20_000


def penalty_norms(problem: FiniteSum, x: np.ndarray, batch_size: int, n_draws: int = 2000,
                  seed: int = 0) -> dict[str, np.ndarray]:
    r"""Per row of ``x`` (shape ``(M, d)``): ``"minibatch"`` :math:`\mathbb E_B\|\nabla
    f_B(x)\|` over batches of ``batch_size`` drawn without replacement, ``"full"``
    :math:`\|\nabla f(x)\|`, ``"noise"`` the exact :math:`\sqrt{\mathbb E\|\nabla f_B-\nabla
    f\|^2}`, and ``"exact"`` (True where every batch was enumerated)."""
    if not isinstance(problem, FiniteSum):
        raise ValueError(f"problem must be a finite sum, got {type(problem).__name__}")
    b = check_int("batch_size", batch_size, low=1, high=problem.n)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    g_all = problem.all_component_grads(x)  # (M, n, d)
    full = np.linalg.norm(g_all.mean(axis=1), axis=-1)
    n = problem.n
    exact = math.comb(n, b) <= MAX_ENUMERATED
    if exact:
        batches = np.array(list(itertools.combinations(range(n), b)))
    else:
        rng = np.random.default_rng(seed)
        batches = np.array([rng.choice(n, b, replace=False) for _ in range(n_draws)])
    mb = np.linalg.norm(g_all[:, batches].mean(axis=2), axis=-1).mean(axis=1)  # (M,)
    noise = np.sqrt(problem.noise_variance(x, b))
    return {"minibatch": mb, "full": full, "noise": noise,
            "exact": np.full(x.shape[0], exact)}
