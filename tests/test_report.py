"""The report as a reader sees it, on small synthetic claims (fast): MathML instead of TeX,
a failed formula shown as code and counted, contents and anchors, the verdict at a glance,
the four outcomes (an exception is an *error*, apart) in the page, in ``verdicts.json`` and in
the exit status, figures with captions."""

import io
import json
import re

import pytest
from report_html import parse, raw_tex

from asam_theory import proofs
from asam_theory.claims import Check, Claim, Outcome, Settings, registry, run_check
from asam_theory.claims.base import RATIO_KINDS, STATUSES
from asam_theory.cli import main
from asam_theory.report import (
    VERDICTS_SCHEMA,
    MathConverter,
    claim_outcome,
    glance,
    text_summary,
    write_report,
)
from asam_theory.report.build import _bar, bar_parts
from asam_theory.report.summary import margin, text_bar


def _holds(settings):
    return Outcome.judged(True, "fine", measured=0.5, bound=1.0, ratio=0.5, figure={"y": [1, 2]},
                          table=[{"$\\rho$": 0.1, "measured": 0.5, "bound": 1.0}] * 70)


def _fails(settings):
    return Outcome.judged(False, "too big", measured=3.0, bound=1.0, ratio=3.0)


def _inconclusive(settings):
    return Outcome.inconclusive("SAM does not beat SGD here, so there is nothing to compare")


def _raises(settings):
    raise RuntimeError("the check itself is broken")


#: a claim whose only check raises
BROKEN = Claim("E5", "broken", r"$x$", "test", (Check("crash", "exact", "raises", _raises),))


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
    assert ("claims: 0 hold, 1 fail, 2 inconclusive, 0 errors; checks: 1 hold, 1 fail, "
            "2 inconclusive, 0 errors") in summary
    assert "real data" in summary and "PEP" in summary


def test_claim_outcome_rules():
    def v(o):
        return run_check(Claim("Z", "z", "z", "t", ()), Check("c", "exact", "d", {
            "holds": _holds, "fails": _fails, "inconclusive": _inconclusive,
            "error": _raises}[o]), Settings(mode="quick"))
    assert claim_outcome([v("holds"), v("holds")]) == "holds"
    assert claim_outcome([v("holds"), v("inconclusive")]) == "inconclusive"
    assert claim_outcome([v("inconclusive"), v("fails")]) == "fails"
    # a broken check decides nothing: the claim is not shown as holding, but a decided
    # failure of another check still says more
    assert claim_outcome([v("holds"), v("error")]) == "error"
    assert claim_outcome([v("inconclusive"), v("error")]) == "error"
    assert claim_outcome([v("error"), v("fails")]) == "fails"
    assert claim_outcome([]) == "inconclusive"


def test_an_exception_is_an_error_reported_apart(tmp_path):
    """A check that raises is an *error*: not a failure and not a pass, counted apart in the
    page, the text summary and verdicts.json, its traceback kept and shown."""
    claims = [*_claims(), BROKEN]
    vs = _verdicts(claims)
    crash = vs[-1]
    assert crash.outcome == "error" and not crash.passed
    assert "RuntimeError: the check itself is broken" in crash.error
    assert "RuntimeError" in crash.summary
    paths = write_report(tmp_path, claims, vs, mode="quick")
    page = parse(paths["index"].read_text())
    assert page.outcomes["E5.crash"] == "error" and page.outcomes["B2.bad"] == "fails"
    assert [g.outcome for g in glance(claims, vs)][-1] == "error"
    text = paths["index"].read_text()
    assert "<span class='error'>1 error</span> of 4." in text  # claims
    assert "<span class='error'>1 error</span> of 5." in text  # checks
    assert "<pre class='error'>" in text and "the check itself is broken" in text
    data = json.loads(paths["verdicts"].read_text())
    assert "error" in VERDICTS_SCHEMA["items"]["properties"]["outcome"]["enum"]
    row = next(v for v in data if v["id"] == "E5.crash")
    assert row["outcome"] == "error" and row["passed"] is False and "Traceback" in row["error"]
    assert all(v["error"] is None for v in data if v["id"] != "E5.crash")
    assert ("checks: 1 hold, 1 fail, 2 inconclusive, 1 error") in text_summary(claims, vs)


def test_a_check_may_not_return_error_itself():
    with pytest.raises(ValueError, match="run_check reports it as an error"):
        Outcome("error", "only run_check sets this")


def test_text_bar_marks_one_and_overflow():
    assert text_bar(0.5, width=20) == "[#####     |         ]"
    assert text_bar(1.5, width=20).startswith("[" + "#" * 15)
    assert text_bar(3.0, width=20).endswith(">") and text_bar(None).strip() == ""
    assert text_bar(1.03, width=20, kind="target") == "[          o         ]"
    assert text_bar(0.5, width=20, kind=None).strip() == ""


RATIOS = (0.0, 1e-4, 0.5, 0.9999999, 1.0, 1.0000000000000002, 1.03, 1.46, 2.0, 3.0, 1e6)


@pytest.mark.parametrize("kind", [*RATIO_KINDS, None])
@pytest.mark.parametrize("outcome", STATUSES)
def test_bar_colour_follows_the_outcome_never_the_number(outcome, kind):
    """Every outcome x ratio kind x ratio: the bar's colour is the outcome's, and no other
    outcome's colour appears in it; the geometry follows the kind."""
    for ratio in RATIOS:
        tol = 0.1 if kind == "target" else None
        parts = bar_parts(outcome, ratio, kind, tol)
        assert parts["colour"] == outcome
        html = _bar(outcome, ratio, kind, tol)
        coloured = re.findall(r"class='(?:fill|marker) (\w+)'", html)
        assert set(coloured) <= {outcome}
        assert (len(coloured) == 1) == (kind is not None)
        for other in set(STATUSES) - {outcome}:
            assert f" {other}'" not in html
        assert (parts["fill"] is not None) == (kind in ("bound", "threshold"))
        assert (parts["marker"] is not None) == (kind == "target")
        if parts["fill"] is not None:
            assert parts["fill"] == pytest.approx(50 * min(ratio, 2.0))
    assert bar_parts(outcome, None, kind) is None and _bar(outcome, None, kind) == "–"


def test_a_target_ratio_needs_its_tolerance_and_kinds_are_checked():
    with pytest.raises(ValueError, match="ratio_tol"):
        Check("c", "exact", "d", _holds, ratio_kind="target")
    with pytest.raises(ValueError, match="ratio_kind"):
        Check("c", "exact", "d", _holds, ratio_kind="upper")
    v = run_check(Claim("Z", "z", "z", "t", ()),
                  Check("c", "exact", "d", _holds, ratio_kind="target", ratio_tol=0.1,
                        ratio_note="slope / 2"), Settings(mode="quick"))
    assert (v.ratio_kind, v.ratio_tol, v.ratio_note) == ("target", 0.1, "slope / 2")
    assert v.to_json()["ratio_kind"] == "target"


def test_the_claim_bar_is_that_of_the_deciding_check():
    """A claim that holds shows the check nearest its limit in the kind's own terms (a
    threshold at 1.2 is nearer than a bound at 0.5); one that fails shows a failing check,
    whatever the numbers of the others."""
    def v(outcome, ratio, kind, tol=None):
        def out(settings):
            return Outcome(outcome, "", ratio=ratio)
        return run_check(Claim("Z", "z", "z", "t", ()),
                         Check(f"c{ratio}", "exact", "d", out, ratio_kind=kind, ratio_tol=tol),
                         Settings(mode="quick"))
    assert margin(v("holds", 0.5, "bound")) == 0.5
    assert margin(v("holds", 1.25, "threshold")) == pytest.approx(0.8)
    assert margin(v("holds", 1.05, "target", 0.1)) == pytest.approx(0.5)
    assert margin(v("holds", 1.05, None)) is None
    c = Claim("Z", "z", "z", "t", ())
    hold = [v("holds", 0.5, "bound"), v("holds", 1.25, "threshold"), v("holds", 0.1, None)]
    assert glance([c], hold)[0].worst.ratio == 1.25
    fail = [*hold, v("fails", 0.2, "bound"), v("inconclusive", 9.0, "bound")]
    g = glance([c], fail)[0]
    assert g.outcome == "fails" and g.worst.outcome == "fails" and g.worst_ratio == 0.2
    g = glance([c], [*hold, v("inconclusive", 1.46, "bound")])[0]
    assert g.outcome == "inconclusive" and g.worst.ratio == 1.46


def test_measured_and_bound_dicts_are_key_value_tables(tmp_path):
    def dicts(settings):
        return Outcome.judged(True, "two parts", measured={"stale": 0.01, "indep": 0.4},
                              bound={"stale": 0.15, "indep": 0.3}, ratio=0.43)
    c = Claim("D", "dicts", "$x$", "test", (Check("parts", "real_data", "d", dicts),))
    paths = write_report(tmp_path, [c], _verdicts([c]), mode="quick")
    text = paths["index"].read_text()
    assert "{&quot;" not in text and '{"' not in text.split("<body>", 1)[1]
    assert "<tr><th>stale</th><td>0.01</td><td>0.15</td></tr>" in text


def test_a_paragraph_repeated_across_claims_is_shown_once(tmp_path):
    note = r"Bookkeeping: $\sigma^2$ is the total variance of one sample's gradient noise."
    a = Claim("A", "a", f"First claim.\n\n{note}", "t",
              (Check("x", "exact", "the same method text", _holds),))
    b = Claim("B", "b", f"Second claim.\n\n{note}", "t",
              (Check("x", "exact", "the same method text", _holds),))
    paths = write_report(tmp_path, [a, b], _verdicts([a, b]), mode="quick")
    text = paths["index"].read_text()
    assert text.count("total variance of one sample") == 1
    assert text.count("the same method text") == 1
    assert "stated under <a href='#A-p2'>A</a>" in text and "<a href='#A.x'>A.x</a>" in text


def test_figures_have_captions_and_long_tables_are_collapsed(synthetic):
    _, _, paths, page, _ = synthetic
    assert len(page.images) == 1
    assert page.images[0]["caption"] == "The curve of : lower is better."  # math is MathML
    text = paths["index"].read_text()
    assert "<details><summary>measured against bound, per configuration (70 rows, 60 shown)" \
        in text


def test_inconclusive_does_not_fail_verify_but_fails_and_errors_do(monkeypatch, tmp_path, capsys):
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
    capsys.readouterr()
    # a broken check is not a pass: exit 1, its exception line printed apart
    monkeypatch.setattr(claims_pkg, "select", lambda ids: [c, BROKEN])
    assert main(["verify", "--quick", "--no-proofs", "--jobs", "1", "--out",
                 str(tmp_path / "e")]) == 1
    out = capsys.readouterr().out
    assert "ERROR" in out and "1 inconclusive, 1 error" in out
    assert "error: E5.crash raised: RuntimeError: the check itself is broken" in out


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
