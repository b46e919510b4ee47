r"""Method mutants: wrong variants of the peer methods' update rules, killed by unit tests.

Each mutant changes one line's worth of a method (numpy rule in :mod:`asam_theory.methods`, or
torch optimizer in :mod:`asam_theory.torch`) in a way the method's paper rules out, and names
the tests that must fail under it (``ASAM_MUTANT=<id> python -m pytest -q <tests>``):

* ``aesam-sigma-squared`` — AE-SAM (Jiang et al., ICLR 2023, arXiv 2304.14647) compares
  :math:`\|g_t\|^2\ge\mu_t+c_t\sigma_t^2` instead of :math:`\mu_t+c_t\sigma_t`: the decision is
  no longer invariant under a rescaling of the loss;
* ``ausam-least-likely`` / ``ausam-ignores-probabilities`` — AUSAM (Deng, Pang, Zhang,
  AAAI 2025, arXiv 2406.08001) draws its subset from the *least* likely samples (the largest
  exponential keys), or uniformly (the keys not divided by the probabilities);
* ``ssam-d-score-unperturbed`` / ``ssam-d-growth-halved`` — SSAM-D (Mi et al., NeurIPS 2022,
  arXiv 2210.05177, official ``SSAMD``) scores the weights at :math:`x_t` instead of the
  perturbed :math:`x_t+\epsilon_t`, or regrows half the coordinates it should;
* ``looksam-torch-global-per-tensor`` — torch LookSAM (Liu et al., CVPR 2022, arXiv
  2203.02714) with ``decomposition="global"`` decomposes and rescales per parameter tensor
  (what ``"per_tensor"`` does): the same as the paper's equations on a one-tensor model only.

Patches replace class attributes looked up at call time (``(AESAM, "decide")`` etc.), so every
caller of the method sees the mutant while it is active.
"""

from __future__ import annotations

from asam_theory.mutants.base import Mutant, PatchSpec

# pytest node ids: the tests that pin each rule's decision (whole files would also run their
# slow neighbours for every mutant)
_PM = "tests/test_peers_methods.py::"
_AESAM_TESTS = (_PM + "test_aesam_decision_sequence_with_nonzero_thresholds",)
_AUSAM_TESTS = ("tests/test_peers_b_methods.py::"
                "test_ausam_selection_follows_the_table_probabilities",)
_SSAM_TESTS = (_PM + "test_ssam_dynamic_mask_drops_and_grows_the_stated_counts",
               _PM + "test_ssam_dynamic_weight_scores_are_at_the_perturbed_weights")
_LOOKSAM_TESTS = ("tests/torch/test_peers_torch.py::"
                  "test_looksam_global_mode_on_a_multi_tensor_model_is_the_numpy_rule",)


def _aesam_sigma_squared() -> list[PatchSpec]:
    import math

    import numpy as np

    def sam_wanted(sq, mu, var, c):
        if math.isinf(c):
            return np.full(np.shape(sq), c < 0)
        return sq >= mu + c * var  # σ² where the rule has σ

    # AESAM.decide looks the helper up in its module at call time
    return [("asam_theory.methods.aesam.sam_wanted", sam_wanted)]


def _ausam_select(mode: str):
    def patches() -> list[PatchSpec]:
        import numpy as np

        from asam_theory.methods.ausam import AUSAM, scaled_probabilities

        def select(self, means, epoch, streams):
            p = scaled_probabilities(means, self.fmin, self.fmax_at(epoch))
            u = streams.uniform("sampling", (means.shape[1],))
            if mode == "least":
                keys = np.log1p(-u) / p  # minus the keys: the k largest, least likely
            else:
                keys = -np.log1p(-u)  # the probabilities left out: uniform
            sel = np.argsort(keys, axis=1, kind="stable")[:, :self.subset_size_of(
                means.shape[1])]
            return sel, p

        return [((AUSAM, "select"), select)]

    return patches


def _ssam_score_unperturbed() -> list[PatchSpec]:
    from asam_theory.methods.ssam import SSAM

    orig_point, orig_mask = SSAM.perturbed_point, SSAM.dynamic_mask
    seen: dict = {}

    def perturbed_point(self, x, e, ws):
        seen["x"] = x.copy()
        return orig_point(self, x, e, ws)

    def dynamic_mask(self, mask, w, g, t, streams):
        return orig_mask(self, mask, seen["x"], g, t, streams)  # x_t, not x_t + ε_t

    return [((SSAM, "perturbed_point"), perturbed_point), ((SSAM, "dynamic_mask"), dynamic_mask)]


def _ssam_growth_halved() -> list[PatchSpec]:
    from asam_theory.methods.ssam import SSAM, top_mask

    def dynamic_mask(self, mask, w, g, t, streams):
        d = w.shape[1]
        live = d - d * self.sparsity
        rate = self.death_rate(t)
        death = (self._score(self.drop_strategy, w, g, streams) + 1e-7) * mask
        growth = (self._score(self.growth_strategy, w, g, streams) + 1e-7) * (1 - mask)
        n_grow = int(min(live * rate, d * self.sparsity)) // 2  # half the regrowth
        return top_mask(death, int(live * (1 - rate))) + top_mask(growth, n_grow)

    return [((SSAM, "dynamic_mask"), dynamic_mask)]


def _looksam_per_tensor() -> list[PatchSpec]:
    from asam_theory.torch.looksam import LookSAM

    orig = LookSAM.step

    def step(self, closure=None):
        mode = self.decomposition
        if mode == "global":
            self.decomposition = "per_tensor"
        try:
            return orig(self, closure)
        finally:
            self.decomposition = mode

    return [((LookSAM, "step"), step)]


MUTANTS: tuple[Mutant, ...] = (
    Mutant("aesam-sigma-squared", "method",
           "AE-SAM takes SAM when ||g||^2 >= mu + c sigma^2 (variance for standard deviation)",
           _aesam_sigma_squared, tests=_AESAM_TESTS),
    Mutant("ausam-least-likely", "method",
           "numpy AUSAM selects the k least likely samples of the batch (largest keys)",
           _ausam_select("least"), tests=_AUSAM_TESTS),
    Mutant("ausam-ignores-probabilities", "method",
           "numpy AUSAM selects the subset uniformly, ignoring the table's probabilities",
           _ausam_select("uniform"), tests=_AUSAM_TESTS),
    Mutant("ssam-d-score-unperturbed", "method",
           "SSAM-D scores weights at the unperturbed x_t instead of x_t + eps_t",
           _ssam_score_unperturbed, tests=_SSAM_TESTS),
    Mutant("ssam-d-growth-halved", "method",
           "SSAM-D regrows half as many coordinates as it drops (floor(min(l r, d s)) / 2)",
           _ssam_growth_halved, tests=_SSAM_TESTS),
    Mutant("looksam-torch-global-per-tensor", "method",
           "torch LookSAM's global mode decomposes and rescales g_v per parameter tensor",
           _looksam_per_tensor, tests=_LOOKSAM_TESTS),
)
