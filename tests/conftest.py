import os

from hypothesis import HealthCheck, settings

# "ci" (default): a quick but real search; ASAM_FULL=1 runs the larger profile.
settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.register_profile("full", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("full" if os.environ.get("ASAM_FULL") else "ci")
