"""The verification report: ``index.html`` (self-contained), ``verdicts.json``, ``figures/``."""

from asam_theory.report.build import VERDICTS_SCHEMA, write_report

__all__ = ["VERDICTS_SCHEMA", "write_report"]
