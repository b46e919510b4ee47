import os

from hypothesis import HealthCheck, settings

# "ci" (default): a quick but real search; ASAM_FULL=1 runs the larger profile.
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.register_profile("full", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("full" if os.environ.get("ASAM_FULL") else "ci")

# ``ASAM_MUTANT=<id> pytest …`` runs the tests against a deliberately wrong variant of the code
# (asam_theory.mutants): the mutant is applied here, before any test module is imported, and
# stays active for the whole session; `asam-theory power` uses it for mutants killed by tests.
if os.environ.get("ASAM_MUTANT"):
    from asam_theory.mutants import by_id as _mutant_by_id

    _ACTIVE_MUTANT = _mutant_by_id(os.environ["ASAM_MUTANT"]).apply()
    _ACTIVE_MUTANT.__enter__()
