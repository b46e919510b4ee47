"""The README's two set-up commands stay the ones CI and users run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands():
    cmds = _commands()
    assert len(cmds) == 2
    main, tests = cmds
    assert "pip install" in main and "asam-theory" in main
    assert "pip install" in tests and "pytest" in tests
    # on CPU machines the pinned local CPU build is taken, never a CUDA download
    assert all('"torch==2.13.0"' in c for c in cmds)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _commands()[1] in ci


def test_pyproject_keeps_an_open_torch_range():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"torch>=\d', text) and "torch==" not in text
