"""Execute every exploration notebook in ``notebooks/`` (quick setting) and check how it is stored.

Each notebook is a jupytext percent-format script ``notebooks/NN_name.py`` (the source, linted
by ruff) paired with ``NN_name.ipynb`` (``formats: ipynb,py:percent``) stored without outputs.
The tests read the script through jupytext, execute it with nbclient, and check that the stored
``.ipynb`` holds the same cells.  Each notebook ends with a cell of ``assert``s on its computed
numbers, so a notebook whose written conclusion stops holding fails here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
SCRIPTS = sorted(NOTEBOOK_DIR.glob("[0-9]*.py"))
CELL_TIMEOUT_S = 300  # per cell; every notebook takes well under 2 minutes in total
NAMES = [
    "01_quickstart",
    "02_staleness_and_neighbourhood",
    "03_gradient_norm_penalty",
    "04_exact_quadratics",
    "05_threaded_asyncsam",
    "06_leaderboard",
    "07_ablation",
    "08_edge_of_stability",
    "09_penalty_fidelity",
]


def execute(nb: nbformat.NotebookNode, timeout: int = CELL_TIMEOUT_S) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh ``python3`` kernel with ``notebooks/`` as working directory."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    return client.execute()


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    """What pairing keeps equal: each cell's type, source and tags."""
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def test_the_five_notebooks_exist_as_paired_scripts() -> None:
    assert [p.stem for p in SCRIPTS] == NAMES
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == NAMES
    # nothing else in notebooks/ that could be mistaken for a source (e.g. a generator script)
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.py")) == [f"{n}.py" for n in NAMES]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_ipynb_is_in_sync_with_its_script_and_stored_without_outputs(script: Path) -> None:
    source = jupytext.read(script)
    stored = nbformat.read(script.with_suffix(".ipynb"), as_version=4)
    nbformat.validate(stored)
    hint = f"{script.name} and its .ipynb differ: run jupytext --sync notebooks/*.py"
    assert cells(stored) == cells(source), hint
    assert stored.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert source.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert stored.metadata["kernelspec"]["name"] == "python3"
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is None and cell.outputs == [], script.name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_notebook_is_well_formed(script: Path) -> None:
    nb = jupytext.read(script)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
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
                assert "._" not in line and " _" not in line, (script.name, line)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_notebook_executes(script: Path) -> None:
    nb = jupytext.read(script)
    start = time.perf_counter()
    out = execute(nb)
    seconds = time.perf_counter() - start
    code = [c for c in out.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    print(f"{script.name}: {seconds:.1f} s")


def test_a_script_out_of_sync_is_detected(tmp_path: Path) -> None:
    """The sync check is not vacuous: an edit to the script alone changes the compared cells."""
    script = SCRIPTS[0]
    edited = tmp_path / script.name
    edited.write_text(script.read_text(encoding="utf-8").replace(
        "QUICK = True", "QUICK = True  # edited", 1), encoding="utf-8")
    stored = nbformat.read(script.with_suffix(".ipynb"), as_version=4)
    assert cells(jupytext.read(edited)) != cells(stored)


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
