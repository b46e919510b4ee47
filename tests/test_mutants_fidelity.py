"""The penalty-fidelity and flatness mutants (asam_theory.mutants.fidelity) are killed by the
tests they name, which pass on the correct code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from asam_theory.mutants import all_mutants, by_id
from asam_theory.mutants.fidelity import MUTANTS

ROOT = Path(__file__).resolve().parents[1]


def _test_function(node_id: str):
    """The test function of a node id, its module loaded from the file under its own name."""
    path, name = node_id.split("::")
    spec = importlib.util.spec_from_file_location(f"_killer_{Path(path).stem}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def test_mutants_are_catalogued_and_name_existing_tests() -> None:
    ids = {m.id for m in all_mutants()}
    for m in MUTANTS:
        assert m.id in ids and m.family == "real_data" and m.tests
        for node in m.tests:
            path, name = node.split("::")
            assert (ROOT / path).exists() and f"def {name}(" in (ROOT / path).read_text()


@pytest.mark.parametrize("mutant", [m.id for m in MUTANTS])
def test_every_named_test_kills_its_mutant(mutant: str) -> None:
    for node in by_id(mutant).tests:
        fn = _test_function(node)
        with by_id(mutant).apply(), pytest.raises(AssertionError):
            fn()
