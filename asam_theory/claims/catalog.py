"""The built-in claims, registered in report order by importing their modules.

Order: our theorems (T1–T3, then T4 and the flat-basin claim), the exact analysis against
Monte Carlo, the literature facts, the real threaded runs.
"""

# isort: off
from asam_theory.claims import theorems  # noqa: F401  T1, T2, T3
from asam_theory.claims import penalty  # noqa: F401  T4, FLAT-BASIN
from asam_theory.claims import exact_mc  # noqa: F401  EXACT-MC
from asam_theory.claims import literature  # noqa: F401  LIT-*
from asam_theory.claims import threaded  # noqa: F401  THREADED
# isort: on
