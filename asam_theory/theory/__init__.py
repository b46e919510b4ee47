"""Theory: our theorems as functions of their constants (``bounds``), exact analysis of
quadratics (``exact``)."""
