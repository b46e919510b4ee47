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


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_python_blocks_run():
    """Every ```python block of the README runs, in order, in one namespace (later blocks reuse
    the model and loader of earlier ones), as a reader pasting them would run them."""
    import torch

    blocks = _python_blocks()
    torch_section = (ROOT / "README.md").read_text().split(
        "## Use AsyncSAM (or any method) in your PyTorch training loop", 1)
    assert len(torch_section) == 2, "the README lost its training-loop section"
    assert len(blocks) >= 4
    threads = torch.get_num_threads()
    namespace: dict = {"__name__": "__readme__"}
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    opt = namespace["opt"]  # the last block's optimizer: AsyncSAM with the look-ahead
    assert type(opt).__name__ == "AsyncSAM" and opt.lookahead is not None
    assert opt.version == 2 * len(namespace["loader"])
    assert torch.isfinite(namespace["loss"])


def test_readme_training_loop_section_shows_both_apis():
    section = (ROOT / "README.md").read_text().split(
        "## Use AsyncSAM (or any method) in your PyTorch training loop", 1)[1].split("\n## ", 1)[0]
    assert "AsyncSAM.for_model(" in section and "opt.step(x, y)" in section
    assert "first_step" in section and "second_step" in section  # davda54/sam's usage
    assert "LookAhead(" in section
