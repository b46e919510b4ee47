"""asam-theory: verify what asynchronous Sharpness-Aware Minimization (AsyncSAM) promises.

Faces of the package (see ``docs/architecture.md``):

* :mod:`asam_theory.problems` – objectives with exact derivatives, constants and stochastic oracles;
* :mod:`asam_theory.methods` – update rules (SGD, SAM, USAM, AsyncSAM, SAMPa) vectorised over seeds;
* :mod:`asam_theory.engine` – the simulation engine (:class:`~asam_theory.engine.Trajectory`);
* :mod:`asam_theory.theory` – our theorems (``bounds``) and exact quadratic analysis (``exact``);
* :mod:`asam_theory.torch` – threaded CPU/GPU AsyncSAM for PyTorch and its baselines.
"""

__version__ = "0.1.0"
