"""The report as a reader sees it, on small synthetic claims (fast): MathML instead of TeX,
a failed formula shown as code and counted, contents and anchors, the verdict at a glance,
three outcomes in the page, in ``verdicts.json`` and in the exit status, figures with
captions."""

import io
import json

import pytest
from report_html import parse, raw_tex

from asam_theory import proofs
from asam_theory.claims import Check, Claim, Outcome, Settings, registry, run_check
from asam_theory.cli import main
from asam_theory.report import (
    VERDICTS_SCHEMA,
    MathConverter,
    claim_outcome,
    glance,
    text_summary,
    write_report,
)
from asam_theory.report.summary import text_bar


def _holds(settings):
    return Outcome.judged(True, "fine", measured=0.5, bound=1.0, ratio=0.5, figure={"y": [1, 2]},
                          table=[{"$\\rho$": 0.1, "measured": 0.5, "bound": 1.0}] * 70)


def _fails(settings):
    return Outcome.judged(False, "too big", measured=3.0, bound=1.0, ratio=3.0)


def _inconclusive(settings):
    return Outcome.inconclusive("SAM does not beat SGD here, so there is nothing to compare")


def _plot(verdict, ax):
    ax.plot(verdict.figure["y"])
    ax.set_xlabel("step")
    ax.set_ylabel("value")


def _claims(statement=r"For all $\rho>0$: $$\frac1T\sum_{t<T}\|\nabla f(w_t)\|^2\le 1$$"):
    a = Claim("A1", r"bounded by $\frac12$", statement, "test",
              (Check("ok", "monte_carlo", r"measures $\mathbb E f$", _holds, _plot,
                     caption=r"The curve of $\|g\|$: lower is better."),
               Check("maybe", "real_data", "precondition", _inconclusive)))
    b = Claim("B2", "false", r"$2\le1$", "test", (Check("bad", "exact", "2 <= 1", _fails),))
    c = Claim("C3", "undecided", r"$x$", "test",
              (Check("maybe", "pep", "precondition", _inconclusive),))
    return [a, b, c]


def _verdicts(claims):
    return [run_check(c, ch, Settings(mode="quick")) for c in claims for ch in c.checks]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    claims = _claims()
    vs = _verdicts(claims)
    md = "# Machine-checked proofs\n\n## First proof\n\n1. ✓ $a=b$ — why\n\n## Second\n\n$c$\n"
    log = io.StringIO()
    paths = write_report(out, claims, vs, mode="quick", proofs_markdown=md,
                         proofs_summary={"steps_checked": 1, "steps_failed": 0,
                                         "steps_unchecked": 0,
                                         "proofs": [{"id": "P1", "title": "First proof"},
                                                    {"id": "P2", "title": "Second"}]},
                         log=log)
    return claims, vs, paths, parse(paths["index"].read_text()), log.getvalue()


def test_math_becomes_mathml_and_no_raw_tex_remains(synthetic):
    _, _, paths, page, log = synthetic
    assert not page.errors
    assert page.scripts == 0 and "http" not in paths["index"].read_text().replace(
        "http://www.w3.org", "")  # no network fetch (the only URL would be a namespace)
    # statement (inline + display), title, description, caption, table header, 2 proofs' math
    assert page.maths == paths["math_converted"] >= 8
    assert paths["math_failed"] == [] and page.tex_code == [] and log == ""
    assert raw_tex(page) == []
    assert "<math display=\"block\">" in paths["index"].read_text()


def test_a_formula_that_fails_is_shown_as_tex_logged_and_counted(tmp_path):
    claims = _claims(statement=r"A bad one: $\notacommand x$, a good one: $x^2$, broken $x^$.")
    log = io.StringIO()
    paths = write_report(tmp_path, claims, _verdicts(claims), mode="quick", log=log)
    page = parse(paths["index"].read_text())
    assert [src for src, _ in paths["math_failed"]] == [r"$\notacommand x$", "$x^$"]
    assert page.tex_code == [r"$\notacommand x$", "$x^$"]
    assert r"\notacommand x" in log.getvalue() and "x^$" in log.getvalue()
    assert raw_tex(page) == []  # the failed TeX is inside <code>, nowhere else


def test_converter_counts_and_detects_unconverted_commands():
    conv = MathConverter()
    out = conv.inline(r"a $x<y$ b $\le$ c $\unknowncmd$ & d")
    assert conv.converted == 2 and len(conv.failed) == 1
    assert "&lt;" in out and "&amp; d" in out and "<code class='tex'>" in out
    # Markdown emphasis characters inside TeX stay TeX
    html = conv.markdown(r"*em* and $a_1 * b_2$, E<e,xi> = 0 <a,b> <span class='x'>red</span>")
    assert "<em>em</em>" in html and html.count("<math") == 1
    assert "E&lt;e,xi&gt; = 0 &lt;a,b&gt;" in html and "<span class='x'>red</span>" in html


def test_contents_and_glance_links_resolve(synthetic):
    claims, vs, _, page, _ = synthetic
    ids = set(page.ids)
    assert len(ids) == len(page.ids), "ids must be unique"
    assert page.contents_links and set(page.contents_links) <= ids
    assert set(page.links) <= ids
    expected = ["glance"] + [x for c in claims for x in
                             [c.id, *(f"{c.id}.{ch.name}" for ch in c.checks)]]
    assert page.contents_links[:len(expected)] == expected
    assert page.contents_links[len(expected):] == ["proofs", "proof-P1", "proof-P2"]
    assert {c.id for c in claims} | {v.id for v in vs} <= set(page.glance_links)


def test_three_outcomes_counted_separately(synthetic):
    claims, vs, paths, page, _ = synthetic
    assert page.outcomes == {"A1.ok": "holds", "A1.maybe": "inconclusive", "B2.bad": "fails",
                             "C3.maybe": "inconclusive"}
    assert [g.outcome for g in glance(claims, vs)] == ["inconclusive", "fails", "inconclusive"]
    text = paths["index"].read_text()
    assert "0 hold</span>, <span class='fails'>1 fail</span>, <span class='inconclusive'>2 " \
           "inconclusive" in text
    assert "1 hold</span>, <span class='fails'>1 fail</span>, <span class='inconclusive'>2 " \
           "inconclusive" in text
    data = json.loads(paths["verdicts"].read_text())
    enum = VERDICTS_SCHEMA["items"]["properties"]["outcome"]["enum"]
    for v in data:
        assert set(VERDICTS_SCHEMA["items"]["required"]) <= set(v)
        assert v["outcome"] in enum and v["passed"] == (v["outcome"] == "holds")
    assert [v["outcome"] for v in data] == ["holds", "inconclusive", "fails", "inconclusive"]
    summary = text_summary(claims, vs)
    assert "claims: 0 hold, 1 fail, 2 inconclusive; checks: 1 hold, 1 fail, 2 inconclusive" \
        in summary
    assert "real data" in summary and "PEP" in summary


def test_claim_outcome_rules():
    def v(o):
        return run_check(Claim("Z", "z", "z", "t", ()), Check("c", "exact", "d", {
            "holds": _holds, "fails": _fails, "inconclusive": _inconclusive}[o]),
            Settings(mode="quick"))
    assert claim_outcome([v("holds"), v("holds")]) == "holds"
    assert claim_outcome([v("holds"), v("inconclusive")]) == "inconclusive"
    assert claim_outcome([v("inconclusive"), v("fails")]) == "fails"
    assert claim_outcome([]) == "inconclusive"


def test_text_bar_marks_one_and_overflow():
    assert text_bar(0.5, width=20) == "[#####     |         ]"
    assert text_bar(1.5, width=20).startswith("[" + "#" * 15)
    assert text_bar(3.0, width=20).endswith(">") and text_bar(None).strip() == ""


def test_figures_have_captions_and_long_tables_are_collapsed(synthetic):
    _, _, paths, page, _ = synthetic
    assert len(page.images) == 1
    assert page.images[0]["caption"] == "The curve of : lower is better."  # math is MathML
    text = paths["index"].read_text()
    assert "<details><summary>measured against bound, per configuration (70 rows, 60 shown)" \
        in text


def test_inconclusive_does_not_fail_verify_but_fails_do(monkeypatch, tmp_path, capsys):
    import asam_theory.claims as claims_pkg

    a, b, c = _claims()
    monkeypatch.setattr(claims_pkg, "select", lambda ids: [c])
    assert main(["verify", "--quick", "--no-proofs", "--jobs", "1", "--out",
                 str(tmp_path / "i")]) == 0
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" in out and "1 inconclusive" in out
    monkeypatch.setattr(claims_pkg, "select", lambda ids: [b, c])
    assert main(["verify", "--quick", "--no-proofs", "--jobs", "1", "--out",
                 str(tmp_path / "f")]) == 1


def test_every_plotted_check_has_a_caption():
    missing = [f"{c.id}.{ch.name}" for c in registry().values() for ch in c.checks
               if ch.plot is not None and len(ch.caption.split()) < 8]
    assert not missing


def test_every_formula_of_claims_and_proofs_converts():
    """Today's claims and proofs: zero formulas fail to convert."""
    conv = MathConverter()
    for c in registry().values():
        conv.markdown(c.statement)
        conv.inline(c.title)
        for ch in c.checks:
            conv.inline(ch.description)
            conv.inline(ch.caption)
    conv.markdown(proofs.render_markdown())
    assert conv.failed == []
    assert conv.converted > 300
