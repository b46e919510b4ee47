"""An HTML reader for the report tests: tag balance, ids, links, figures with captions, and
the text a reader sees outside code and MathML (where raw TeX must not remain)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
#: text inside these is not prose: TeX may legitimately appear there (or is not shown)
VERBATIM = {"code", "pre", "math", "style", "title", "script"}
#: a TeX control word such as ``\frac`` or ``\mathbb``
TEX_COMMAND = re.compile(r"\\[A-Za-z]{2,}")


class ReportParser(HTMLParser):
    """Collects what the tests check; ``errors`` lists tag-structure problems."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.links: list[str] = []
        self.contents_links: list[str] = []
        self.glance_links: list[str] = []
        self.prose: list[str] = []
        self.maths = 0
        self.tex_code: list[str] = []
        self.images: list[dict] = []  # attrs + "caption" (text of the enclosing figcaption)
        self.scripts = 0
        self.claims: list[str] = []
        self.verdicts: list[str] = []
        self.outcomes: dict[str, str] = {}
        self._figure: dict | None = None
        self._in_caption = False
        self._in_tex = False
        self._section: list[str] = []

    def _inside(self, names: set[str]) -> bool:
        return any(t in names for t in self.stack)

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
            if "contents" in self._section:
                self.contents_links.append(a["href"][1:])
            if "glance" in self._section:
                self.glance_links.append(a["href"][1:])
        if tag == "math":
            self.maths += 1
        if tag == "script":
            self.scripts += 1
        if tag == "code" and "tex" in a.get("class", "").split():
            self._in_tex = True
            self.tex_code.append("")
        if "data-claim-id" in a:
            self.claims.append(a["data-claim-id"])
        if "data-verdict-id" in a:
            self.verdicts.append(a["data-verdict-id"])
            self.outcomes[a["data-verdict-id"]] = a.get("data-outcome", "")
        if tag == "figure":
            self._figure = {"images": [], "caption": ""}
        if tag == "figcaption":
            self._in_caption = True
        if tag == "img":
            img = dict(a, caption=None)
            self.images.append(img)
            if self._figure is not None:
                self._figure["images"].append(img)
        if tag not in VOID:
            self.stack.append(tag)
            self._section.append(a.get("id", ""))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            if tag in self.stack:
                while self.stack and self.stack[-1] != tag:
                    self.stack.pop()
                    self._section.pop()
            else:
                return
        self.stack.pop()
        self._section.pop()
        if tag == "code":
            self._in_tex = False
        if tag == "figcaption":
            self._in_caption = False
        if tag == "figure" and self._figure is not None:
            for img in self._figure["images"]:
                img["caption"] = self._figure["caption"].strip()
            self._figure = None

    def handle_data(self, data):
        if self._in_caption and self._figure is not None and not self._inside({"math"}):
            self._figure["caption"] += data
        if self._in_tex:
            self.tex_code[-1] += data
        if not self._inside(VERBATIM):
            self.prose.append(data)

    def close(self):
        super().close()
        if self.stack:
            self.errors.append(f"unclosed tags at the end: {self.stack}")


def parse(text: str) -> ReportParser:
    p = ReportParser()
    p.feed(text)
    p.close()
    return p


def raw_tex(parser: ReportParser) -> list[str]:
    """Pieces of prose that still look like TeX: a ``$`` or a control word."""
    return [t for t in parser.prose if "$" in t or TEX_COMMAND.search(t)]
