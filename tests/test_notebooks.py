"""Execute every exploration notebook in ``notebooks/`` (quick setting) and check how it is stored.

Each notebook ends with a cell of ``assert``s on its computed numbers, so a notebook whose
written conclusion stops holding fails here.  Notebooks are stored without outputs and are
exactly what ``notebooks/_build.py`` writes.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # per cell; every notebook takes well under 2 minutes in total


def execute(nb: nbformat.NotebookNode, timeout: int = CELL_TIMEOUT_S) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh ``python3`` kernel with ``notebooks/`` as working directory."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    return client.execute()


def load_builder():
    spec = importlib.util.spec_from_file_location("notebook_builder", NOTEBOOK_DIR / "_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_five_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_staleness_and_neighbourhood.ipynb",
        "03_gradient_norm_penalty.ipynb",
        "04_exact_quadratics.ipynb",
        "05_threaded_asyncsam.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs_and_well_formed(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert cell.execution_count is None and cell.outputs == [], path.name
    # opens with its question, ends with its conclusion and the asserts behind it
    assert nb.cells[0].cell_type == "markdown" and "**Question.**" in nb.cells[0].source
    assert nb.cells[-2].cell_type == "markdown" and "What the figure" in nb.cells[-2].source
    assert nb.cells[-1].cell_type == "code" and "assert " in nb.cells[-1].source
    # one parameter cell, QUICK = True
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "QUICK = True" in tagged[0].source
    # public API only
    for cell in code:
        for line in cell.source.splitlines():
            if line.lstrip().startswith(("import ", "from ")):
                assert "._" not in line and " _" not in line, (path.name, line)


def test_notebooks_are_what_the_builder_writes() -> None:
    builder = load_builder()
    assert sorted(builder.NOTEBOOKS) == [p.name for p in NOTEBOOKS]
    for name, cells in builder.NOTEBOOKS.items():
        stored = (NOTEBOOK_DIR / name).read_text(encoding="utf-8")
        assert stored == builder.render(cells), f"{name} is stale: run python notebooks/_build.py"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    out = execute(nb)
    seconds = time.perf_counter() - start
    code = [c for c in out.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    print(f"{path.name}: {seconds:.1f} s")


def test_a_failing_notebook_fails() -> None:
    """The harness is not vacuous: an error in a cell (e.g. a broken conclusion) fails."""
    nb = new_notebook(cells=[
        new_markdown_cell("**Question.** Does the harness notice a failing assert?"),
        new_code_cell("QUICK = True\nx = 1"),
        new_code_cell("assert x == 2, 'conclusion no longer holds'"),
    ])
    with pytest.raises(CellExecutionError, match="conclusion no longer holds"):
        execute(nb, timeout=60)


def test_a_raising_cell_stops_the_notebook() -> None:
    nb = new_notebook(cells=[
        new_code_cell("raise RuntimeError('boom')"),
        new_code_cell("reached = True"),
    ])
    with pytest.raises(CellExecutionError, match="boom"):
        execute(nb, timeout=60)
    assert nb.cells[1].execution_count is None
