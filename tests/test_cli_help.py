"""The command line as a user meets it: every option's help shows its default, ``--json`` means
one thing everywhere (print JSON on stdout; ``--json-out FILE`` writes a file), bad arguments
and output paths exit 2 before any work starts, warnings are printed once in the user's
terms."""

import argparse
import re

import pytest

from asam_theory import cli
from asam_theory.commands.common import HelpFormatter


def _subparsers():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _option_blocks(help_text: str) -> dict[str, str]:
    """The help of each option: from its line ``  --name ...`` to the next option."""
    blocks: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+)", line)
        if m:
            current = m.group(1)
            blocks[current] = line
        elif current is not None and line.startswith("    "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return blocks


@pytest.mark.parametrize("name", [m.NAME for m in cli.COMMANDS])
def test_every_option_has_help_that_shows_its_default(name):
    p = _subparsers()[name]
    assert p.formatter_class is HelpFormatter
    blocks = _option_blocks(p.format_help())
    options = [a for a in p._actions if a.option_strings and a.help is not argparse.SUPPRESS
               and not isinstance(a, argparse._HelpAction)]
    assert options
    for a in options:
        flag = max(a.option_strings, key=len)
        # the block is keyed by the first option string shown
        text = next(v for k, v in blocks.items() if k in a.option_strings)
        assert a.help, f"{name} {flag} has no help"
        assert re.search(r"default", text, re.I), f"{name} {flag}: no default in {text!r}"
        assert "(default: None)" not in text, f"{name} {flag}: say what None means"


def test_json_is_a_flag_printing_to_stdout_everywhere():
    for name, p in _subparsers().items():
        for a in p._actions:
            if "--json" in a.option_strings:
                assert isinstance(a, argparse._StoreTrueAction), name
            if "--json-out" in a.option_strings:
                assert a.metavar == "FILE", name


def test_bad_out_exits_2_before_any_check_runs(monkeypatch, capsys, tmp_path):
    import asam_theory.claims as claims_pkg

    def boom(*a, **k):
        raise AssertionError("a check ran before --out was validated")

    monkeypatch.setattr(claims_pkg, "run_check", boom)
    assert cli.main(["verify", "--quick", "--out", "/dev/null/report"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "/dev/null" in err and "Traceback" not in err
    f = tmp_path / "a_file"
    f.write_text("x")
    assert cli.main(["verify", "--quick", "--claims", "T1", "--out", str(f / "r")]) == 2


def test_train_bench_ablation_validate_paths_and_numbers_before_work(monkeypatch, capsys,
                                                                     tmp_path):
    import asam_theory.experiments.ablation as abl
    import asam_theory.experiments.bench as bench
    import asam_theory.experiments.leaderboard as lb

    def boom(*a, **k):
        raise AssertionError("work started before the arguments were validated")

    monkeypatch.setattr(bench, "run_bench", boom)
    monkeypatch.setattr(abl, "full_ablation", boom)
    monkeypatch.setattr(lb, "run_leaderboard", boom)
    bad = "/dev/null/x.json"
    assert cli.main(["bench", "--json-out", bad]) == 2
    assert cli.main(["bench", "--rounds", "0"]) == 2
    assert cli.main(["ablation", "--quick", "--json-out", bad]) == 2
    assert cli.main(["ablation", "--quick", "--json-out", str(tmp_path)]) == 2  # a folder
    assert cli.main(["train", "--quick", "--out", "/dev/null/lb"]) == 2
    assert cli.main(["train", "--quick", "--label-noise", "1", "--out", str(tmp_path)]) == 2
    assert cli.main(["train", "--quick", "--lrs", "0.1,x", "--out", str(tmp_path)]) == 2
    assert cli.main(["train", "--quick", "--jobs", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 8 and "Traceback" not in err and "--jobs" in err


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--n-seeds", "0"], ["--dim", "0"],
                                  ["--lr", "0"], ["--rho", "-1"], ["--tau", "-1"],
                                  ["--batch-size", "0"], ["--methods", "nosuch"]])
def test_simulate_rejects_bad_arguments(argv, capsys):
    assert cli.main(["simulate", *argv]) == 2
    assert "error: " + argv[0] in capsys.readouterr().err


def test_simulate_warnings_once_in_the_users_terms_and_header_names_the_problem(capsys):
    assert cli.main(["simulate", "--lr", "5", "--steps", "20", "--n-seeds", "2"]) == 0
    out, err = capsys.readouterr()
    lines = [x for x in err.splitlines() if x.strip()]
    assert lines and all(x.startswith("asam-theory simulate: warning: ") for x in lines)
    assert ".py" not in err and len(lines) == 2  # one per kind: stability, divergence
    assert out.splitlines()[0].startswith("quadratic (Quadratic) ")
    assert "GaussianNoise" not in out
    assert cli.main(["simulate", "--problem", "softmax", "--steps", "5", "--n-seeds", "2",
                     "--methods", "sgd"]) == 0
    assert capsys.readouterr().out.startswith("softmax (SoftmaxRegression) ")
