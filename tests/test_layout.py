"""The package's layout: one import name, an acyclic import graph whose edges point down the
layers of ``docs/architecture.md``, and no library module importing a top-level script folder.

The graph is read from the source with :mod:`ast` (every ``import``/``from … import`` at any
depth, relative imports resolved), over the folders that install as ``asam_theory``:
``asam_theory/`` itself, ``proofs/`` (as ``asam_theory.proofs``) and ``simulations/`` (as
``asam_theory.sweeps``), following the ``package-dir`` map in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import graphlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]
PACKAGES: list[str] = PYPROJECT["tool"]["setuptools"]["packages"]

#: layer of each top-level part; an import may only point to the same or a lower layer
LAYERS: dict[str, int] = {
    "asam_theory": 0,  # the package's __init__ (version only)
    "asam_theory.validation": 0,
    "asam_theory.rng": 0,
    "asam_theory.stats": 0,
    "asam_theory.design": 0,
    "asam_theory.problems": 1,
    "asam_theory.methods": 1,
    "asam_theory.engine": 2,
    "asam_theory.theory": 2,
    "asam_theory.data": 2,
    "asam_theory.proofs": 3,
    "asam_theory.sweeps": 3,
    "asam_theory.torch": 3,
    "asam_theory.testing": 3,
    "asam_theory.experiments": 3.5,  # drivers above the optimizers they run
    "asam_theory.claims": 4,
    "asam_theory.mutants": 4,  # above the claims it attacks (claims never import it)
    "asam_theory.report": 5,
    "asam_theory.commands": 6,
    "asam_theory.cli": 6,
    "asam_theory.__main__": 7,
}


def _package_root(name: str) -> Path:
    """Folder of package ``name`` per the package-dir map."""
    best = max((k for k in PACKAGE_DIR if name == k or name.startswith(k + ".")), key=len)
    rest = name[len(best):].lstrip(".")
    return ROOT / PACKAGE_DIR[best] / Path(*rest.split(".")) if rest else ROOT / PACKAGE_DIR[best]


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        folder = _package_root(pkg)
        for f in folder.glob("*.py"):
            mods[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Modules of the package imported by ``name`` (resolved to the longest known module)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.stem == "__init__"
    base = name if is_pkg else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                mod = f"{anchor}.{node.module}" if node.module else anchor
            else:
                mod = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from pkg import Name`` the package
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in MODULES else mod
                       for a in node.names]
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    key = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[key]


def test_every_package_folder_is_listed():
    """Each folder with an ``__init__.py`` under a mapped root is in ``packages``."""
    found = set()
    for pkg, folder in PACKAGE_DIR.items():
        root = ROOT / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            if any(p.startswith((".", "__")) for p in rel.parts):
                continue
            found.add(".".join((pkg, *rel.parts)) if rel.parts else pkg)
    # a folder mapped on its own (proofs/ -> asam_theory.proofs) is found from both roots only
    # when nested; keep those reached through their own mapping
    found = {f for f in found if _package_root(f).exists()}
    assert found == set(PACKAGES)


def test_only_one_top_level_name():
    assert {p.split(".")[0] for p in PACKAGES} == {"asam_theory"}
    assert {k.split(".")[0] for k in PACKAGE_DIR} == {"asam_theory"}


def test_import_graph_is_acyclic():
    ts = graphlib.TopologicalSorter(GRAPH)
    try:
        ts.prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_dependencies_point_down_the_layers():
    bad = sorted(f"{a} (layer {_layer(a)}) -> {b} (layer {_layer(b)})"
                 for a, deps in GRAPH.items() for b in deps if _layer(b) > _layer(a))
    assert not bad, "\n".join(bad)


def test_claims_never_import_the_mutants():
    """Mutants attack the claims from outside: no claim module may depend on them."""
    bad = sorted(f"{a} -> {b}" for a, deps in GRAPH.items() if a.startswith("asam_theory.claims")
                 for b in deps if b.startswith("asam_theory.mutants"))
    assert not bad, bad


def test_no_module_imports_a_script_folder():
    """The library never imports the repository's top-level folders by their own names."""
    scripts = {"proofs", "simulations", "notebooks", "benchmarks", "tools", "tests"}
    bad = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                    else [])
            bad += [f"{name}: {m}" for m in mods if m.split(".")[0] in scripts]
    assert not bad, bad


@pytest.mark.slow
def test_built_wheel_has_one_top_level_name(tmp_path):
    """A wheel built from the repository installs ``asam_theory`` alone, with the proofs and
    the sweeps inside it (the build runs without isolation, with the setuptools that the test
    extra installs)."""
    import subprocess
    import zipfile

    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        pytest.fail(f"pip wheel failed: {res.stderr[-2000:]}")
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = next(n for n in names if n.endswith("top_level.txt"))
        assert zf.read(top).decode().split() == ["asam_theory"]
    roots = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert roots == {"asam_theory"}
    for f in ("asam_theory/proofs/core.py", "asam_theory/sweeps/sweep.py",
              "asam_theory/claims/catalog.py"):
        assert f in names, f
