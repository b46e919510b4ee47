"""The report in a real browser (headless Chromium, see tests/chromium.py): at a 1400 px wide
window nothing makes the page scroll sideways (long formulas and tables scroll in their own
box), every in-page link lands on a visible element, the console shows no error, and a
screenshot of the top is kept as a CI artefact (``artifacts/report_1400.png``).

The page is built from synthetic verdicts for every claim of the registry (their statements
and descriptions: the real mathematics), extra checks covering every outcome x ratio kind with
figures and dict-valued measurements, and the real machine-checked proofs (the widest
content), so no check runs here."""

from __future__ import annotations

from pathlib import Path

import pytest
from chromium import Page, chromium

from asam_theory import proofs
from asam_theory.claims import Check, Claim, Outcome, Settings, registry, run_check
from asam_theory.claims.base import CHECK_STATUSES, RATIO_KINDS, Verdict
from asam_theory.report import write_report

pytestmark = pytest.mark.skipif(
    chromium() is None, reason="chromium is not installed (.ci/run installs Debian's package: "
                               "apt-get install -y chromium)")

WIDTH = 1400
ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / f"report_{WIDTH}.png"


def _plot(verdict, ax):
    ax.plot(verdict.figure["y"], label="measured")
    ax.axhline(1.0, ls="--", label="bound")
    ax.set_xlabel("step $t$")
    ax.set_ylabel("ratio")
    ax.legend()


def _outcome(status, ratio):
    def run(settings):
        return Outcome(status, f"synthetic {status} at ratio {ratio}",
                       measured={"part_a": ratio, "part_b": [1, 2, 3]}, bound={"part_a": 1.0},
                       ratio=ratio, figure={"y": [0.2, 0.5, ratio]},
                       table=[{"$\\rho$": 0.1 * k, "measured": ratio, "bound": 1.0}
                              for k in range(80)])
    return run


def _raises(settings):
    raise RuntimeError("a synthetic broken check")


def _synthetic() -> tuple[list[Claim], list[Verdict]]:
    checks = [Check("error", "monte_carlo", "Synthetic: a check that raises (an error).",
                    _raises)]
    for status in CHECK_STATUSES:
        for kind in (*RATIO_KINDS, None):
            ratio = {"holds": 0.9, "fails": 1.6, "inconclusive": 1.46}[status]
            checks.append(Check(f"{status}_{kind}", "monte_carlo",
                                r"Synthetic: $\frac1T\sum_{t<T}\|\nabla f(w_t)\|^2$ against "
                                r"its bound.", _outcome(status, ratio), _plot,
                                caption="A synthetic figure: the measured ratio per step "
                                        "against the dashed bound at 1; lower is better.",
                                ratio_kind=kind, ratio_tol=0.1 if kind == "target" else None,
                                ratio_note="A synthetic ratio."))
    combo = Claim("COMBOS", "Every outcome and ratio kind", r"Synthetic: $x\le1$.", "test",
                  tuple(checks))
    verdicts = [run_check(combo, ch, Settings(mode="quick")) for ch in combo.checks]
    claims = [*registry().values(), combo]
    for c in claims[:-1]:  # the registry's claims with made-up verdicts: no check runs
        for ch in c.checks:
            verdicts.append(Verdict(c.id, ch.name, ch.method, "holds", measured=0.5, bound=1.0,
                                    ratio=0.5, summary="synthetic", ratio_kind=ch.ratio_kind,
                                    ratio_tol=ch.ratio_tol, ratio_note=ch.ratio_note))
    return claims, verdicts


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    claims, verdicts = _synthetic()
    s = proofs.summary()
    summary = {k: s[k] for k in ("steps_checked", "steps_definitional", "premises",
                                 "steps_failed", "steps_unchecked")}
    summary["proofs"] = [{"id": p["id"], "title": p["title"]} for p in s["proofs"]]
    paths = write_report(out, claims, verdicts, mode="quick", command="synthetic",
                         proofs_markdown=proofs.render_markdown(), proofs_summary=summary)
    with Page(WIDTH, 900) as page:
        page.open(paths["index"])
        layout = page.evaluate(_LAYOUT)
        anchors = page.evaluate(_ANCHORS)
        page.evaluate("window.scrollTo(0, 0)")
        shot = page.screenshot(ARTIFACT)
        errors = list(page.errors)
    return {"layout": layout, "anchors": anchors, "errors": errors, "shot": shot}


_LAYOUT = """(() => {
  const w = window.innerWidth;
  const clipped = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o !== 'visible') return true; }
    return false; };
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > w + 0.5 && !clipped(el) && wide.length < 5)
      wide.push(el.tagName + '#' + el.id + '.' + el.className + ' right=' + Math.round(r.right));
  }
  return {scrollWidth: document.scrollingElement.scrollWidth, innerWidth: w, wide: wide,
          bars: document.querySelectorAll('.bar').length};
})()"""

_ANCHORS = """(() => {
  const missing = [], astray = [];
  const links = Array.from(document.querySelectorAll('a[href^="#"]'));
  for (const a of links) {
    const id = decodeURIComponent(a.getAttribute('href').slice(1));
    const el = document.getElementById(id);
    if (!el || el.getClientRects().length === 0) { missing.push(id); continue; }
    location.hash = '#' + encodeURIComponent(id);
    const top = el.getBoundingClientRect().top;
    if (!(top > -2 && top < window.innerHeight)) astray.push(id + ' top=' + Math.round(top));
  }
  return {n: links.length, missing: missing, astray: astray};
})()"""


def test_no_horizontal_overflow_at_1400px(rendered):
    lay = rendered["layout"]
    assert lay["innerWidth"] == WIDTH
    assert lay["scrollWidth"] <= lay["innerWidth"], lay["wide"]
    assert lay["bars"] > 12


def test_every_in_page_link_lands_on_an_element(rendered):
    a = rendered["anchors"]
    assert a["n"] > 100
    assert a["missing"] == [] and a["astray"] == []


def test_no_console_errors_and_a_screenshot_is_kept(rendered):
    assert rendered["errors"] == []
    shot = rendered["shot"]
    assert shot == ARTIFACT and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
