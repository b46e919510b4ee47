r"""TeX to MathML at build time, so the report renders its mathematics with no script.

Browsers render MathML Core natively; :mod:`latex2mathml` (pure Python) converts the
``$…$`` (inline) and ``$$…$$`` (display) spans of the claims' statements, the proofs'
Markdown and the table headers.  A span that does not convert — the converter raises, or it
leaves a TeX command such as ``\foo`` unconverted in an ``<mi>`` — is shown as its TeX
source in ``<code class='tex'>``, and the :class:`MathConverter` lists it so the build log
and the tests can count it.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import markdown as _md
from latex2mathml.converter import convert as _convert

#: a display span ``$$…$$`` (may cross lines) or an inline span ``$…$`` (one line)
MATH = re.compile(r"(\$\$.+?\$\$|\$[^$\n]+?\$)", re.S)
#: a TeX control word the converter left as an identifier: the conversion is not faithful
_UNCONVERTED = re.compile(r"<m[io][^>]*>\\[A-Za-z]+</m[io]>")
#: a ``<`` that does not open (or close) one of the inline HTML tags Markdown text may use;
#: text such as ``E<e,xi> = 0`` must not become an unknown element
_STRAY_LT = re.compile(r"<(?!/?(?:span|div|a|b|i|em|strong|code|sub|sup|br|p)(?:\s[^<>]*)?/?>)")
#: a numeric character reference, written out as the character (UTF-8 page) unless it is
#: one of the characters HTML needs escaped
_CHARREF = re.compile(r"&#x([0-9A-Fa-f]+);")
#: an ``<mrow>`` around a single token element: equivalent to the token alone (MathML Core)
_LONE_MROW = re.compile(r"<mrow>(<(mi|mn|mo)(?: [^<>]*)?>[^<]*</\2>)</mrow>")
#: an inline formula with a longer TeX source is put in a box that scrolls sideways
WIDE_INLINE = 60
_KEEP_ESCAPED = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}


def _compact(mathml: str) -> str:
    """Smaller equivalent MathML for an HTML page: no ``xmlns`` (implied by the HTML parser),
    characters instead of numeric references, no ``<mrow>`` around a single token."""
    mathml = mathml.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "", 1)
    mathml = _LONE_MROW.sub(r"\1", mathml)

    def char(m: re.Match) -> str:
        c = chr(int(m.group(1), 16))
        return _KEEP_ESCAPED.get(c, c)

    return _CHARREF.sub(char, mathml)


@dataclass
class MathConverter:
    """Converts math spans and keeps count: ``converted`` spans rendered as MathML,
    ``failed`` the TeX sources (with the reason) shown as code instead."""

    converted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def span(self, source: str) -> str:
        """HTML for one ``$…$`` or ``$$…$$`` span (delimiters included)."""
        display = source.startswith("$$")
        tex = source[2:-2] if display else source[1:-1]
        try:
            out = _convert(tex.strip(), display="block" if display else "inline")
            bad = _UNCONVERTED.search(out)
            if bad:
                raise ValueError(f"unknown command {html.unescape(bad.group(0))}")
        except Exception as exc:  # noqa: BLE001 - any converter error shows the source instead
            self.failed.append((source, f"{type(exc).__name__}: {exc}"))
            return f"<code class='tex'>{html.escape(source)}</code>"
        self.converted += 1
        out = _compact(out)
        if not display and len(tex) > WIDE_INLINE:
            # a long inline formula cannot wrap: it scrolls in its own box, not the page
            out = f"<span class='mathbox'>{out}</span>"
        return out

    def inline(self, text: str) -> str:
        """Plain text (not Markdown), HTML-escaped, with its math spans converted."""
        pieces = []
        last = 0
        for m in MATH.finditer(text):
            pieces.append(html.escape(text[last:m.start()]))
            pieces.append(self.span(m.group(0)))
            last = m.end()
        pieces.append(html.escape(text[last:]))
        return "".join(pieces)

    def markdown(self, text: str) -> str:
        """Markdown to HTML; math spans are taken out before Markdown sees them (so ``_`` and
        ``*`` inside TeX are not read as emphasis) and put back as MathML; a ``<`` that does
        not start an inline HTML tag is text."""
        spans: list[str] = []

        def keep(m: re.Match) -> str:
            spans.append(m.group(0))
            return f"MATHSPAN{len(spans) - 1}END"

        body = _md.markdown(_STRAY_LT.sub("&lt;", MATH.sub(keep, text)), extensions=["tables"])
        return re.sub(r"MATHSPAN(\d+)END", lambda m: self.span(spans[int(m.group(1))]), body)


def md_to_html(text: str, converter: MathConverter | None = None) -> str:
    """Markdown with ``$…$``/``$$…$$`` math to HTML with MathML (see :class:`MathConverter`)."""
    return (converter or MathConverter()).markdown(text)
