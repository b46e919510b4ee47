"""The built-in claims, registered in report order by importing their modules."""

from asam_theory.claims import exact_mc, literature, penalty  # noqa: F401
