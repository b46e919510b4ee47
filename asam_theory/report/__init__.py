"""The verification report: ``index.html`` (self-contained, MathML, no script),
``verdicts.json``, ``figures/``; and the verdict at a glance shared with the CLI."""

from asam_theory.report.build import VERDICTS_SCHEMA, write_report
from asam_theory.report.mathml import MathConverter, md_to_html
from asam_theory.report.summary import claim_outcome, glance, text_summary

__all__ = ["VERDICTS_SCHEMA", "MathConverter", "claim_outcome", "glance", "md_to_html",
           "text_summary", "write_report"]
