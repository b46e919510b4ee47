"""The documents under ``docs/`` that the code cites exist, with every section it cites.

Docstrings and comments cite papers or files inside the repository. A citation names a document
under ``docs/`` and then one or more sections, e.g. ``§1.3/§2.2``, ``§2.1–2.3`` or ``§6 (b)``; a
bare ``§N`` further down the same file refers to the document named last above it. Files that
a user of the package does not have (notes outside the repository) must not be cited at all.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SKIP_DIRS = {"build", "dist", "__pycache__", "node_modules", "venv", "report", "runs"}

#: a heading whose title starts with a section number: "## 6. ...", "### 2.1 ...", "## 14b. ..."
HEADING = re.compile(r"^#{1,6}\s+(\d+[a-z]?(?:\.\d+)*)\.?\s", re.MULTILINE)
#: a document under docs/, or a section reference (optionally a range "§2.1–2.3")
TOKEN = re.compile(
    r"docs/(?P<doc>[A-Za-z0-9_]+)\.md"
    r"|§\s*(?P<sec>\d+[a-z]?(?:\.\d+)*)(?:\s*[–-]\s*§?\s*(?P<end>\d+[a-z]?(?:\.\d+)*))?"
)
#: citations of files outside the repository, or of notes by a name not under docs/
FORBIDDEN = {
    "a path into the workspace outside the repository": re.compile(r"\.\./shared"),
    "the upper-case architecture notes": re.compile(r"ARCHITECTURE\.md"),
    "the variant notes by their old name": re.compile(r"sam_variants\.md"),
    "theory notes not under docs/": re.compile(r"(?<!docs/)\btheory\.md"),
    "method notes not under docs/": re.compile(r"(?<!docs/)\bmethods\.md"),
    "architecture notes not under docs/": re.compile(r"(?<!docs/)\barchitecture\.md"),
}


def python_files() -> list[Path]:
    """Every ``.py`` file of the repository (package, proofs, sweeps, tests, notebooks)."""
    out = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts[:-1]
        if any(p.startswith(".") or p in SKIP_DIRS or p.endswith(".egg-info") for p in parts):
            continue
        out.append(path)
    return sorted(out)


def sections(markdown: str) -> set[str]:
    """Section numbers that head a section of ``markdown``."""
    return set(HEADING.findall(markdown))


def citations(text: str) -> list[tuple[str, str | None, int]]:
    """``(doc, section or None, line)`` for every docs/ citation in ``text``; a range yields
    both ends; a ``§`` before any document is named is not a citation of ours."""
    out: list[tuple[str, str | None, int]] = []
    current = None
    for m in TOKEN.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group("doc"):
            current = m.group("doc")
            out.append((current, None, line))
        elif current is not None:
            out.append((current, m.group("sec"), line))
            if m.group("end"):
                out.append((current, m.group("end"), line))
    return out


def all_citations() -> list[tuple[str, str, str | None, int]]:
    return [(str(p.relative_to(ROOT)), doc, sec, line)
            for p in python_files()
            for doc, sec, line in citations(p.read_text(encoding="utf-8"))]


def test_the_three_documents_exist_and_are_numbered_like_their_citations() -> None:
    for name in ("theory", "methods", "architecture"):
        assert (DOCS / f"{name}.md").is_file(), name
    theory, methods = (sections((DOCS / f"{n}.md").read_text(encoding="utf-8"))
                       for n in ("theory", "methods"))
    assert {"0", "1.3", "2.1", "2.2", "2.3", "3", "6"} <= theory
    assert {"2.1", "2.5", "6", "6.1", "6.5", "7", "8", "9", "14", "14b", "18"} <= methods


def test_every_cited_document_and_section_exists() -> None:
    found = all_citations()
    # the scan sees the code's citations (not vacuous): theory §6 and methods §6.5 are cited
    assert ("theory", "6") in {(d, s) for _, d, s, _ in found}
    assert ("methods", "6.5") in {(d, s) for _, d, s, _ in found}
    known: dict[str, set[str]] = {}
    missing = []
    for where, doc, sec, line in found:
        path = DOCS / f"{doc}.md"
        if not path.is_file():
            missing.append(f"{where}:{line}: docs/{doc}.md does not exist")
            continue
        if doc not in known:
            known[doc] = sections(path.read_text(encoding="utf-8"))
        if sec is not None and sec not in known[doc]:
            missing.append(f"{where}:{line}: docs/{doc}.md has no section {sec}")
    assert missing == []


@pytest.mark.parametrize("what", sorted(FORBIDDEN))
def test_no_file_cites_notes_outside_the_repository(what: str) -> None:
    pattern = FORBIDDEN[what]
    hits = [f"{p.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
            for p in python_files()
            for text in [p.read_text(encoding="utf-8")]
            for m in pattern.finditer(text)]
    assert hits == [], what


def test_the_parsers_find_what_they_should() -> None:
    """The checks can fail: a missing section, a range end and a bare § are all seen."""
    md = "# Title\n\n## 0. Notation\n\n### 2.1 Cycle\n\n## 14b. BiSAM\n\ntext § 9 in prose\n"
    assert sections(md) == {"0", "2.1", "14b"}
    text = ('"""See ``docs/theory.md`` §2.1–2.3 and §1.3/§2.2.\n\nLater: §6 (b)."""\n'
            "# docs/methods.md §14b, then §6.5\n")
    assert citations(text) == [
        ("theory", None, 1), ("theory", "2.1", 1), ("theory", "2.3", 1),
        ("theory", "1.3", 1), ("theory", "2.2", 1), ("theory", "6", 3),
        ("methods", None, 4), ("methods", "14b", 4), ("methods", "6.5", 4),
    ]
    assert citations("§3 of a paper, before any document is named") == []
    bare = "see " + "theory" + ".md"  # spelled apart so that this file passes its own scan
    assert FORBIDDEN["theory notes not under docs/"].search(bare)
    assert not FORBIDDEN["theory notes not under docs/"].search(bare.replace("see ", "see docs/"))
