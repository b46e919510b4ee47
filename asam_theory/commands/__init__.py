"""Sub-commands of the ``asam-theory`` CLI (one module each; see :mod:`asam_theory.cli`)."""
