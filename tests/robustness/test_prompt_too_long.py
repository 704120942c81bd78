"""A prompt longer than the LM's context is a one-line error at prompt-building time, with the shot count
that fits; that many shots then run."""

from __future__ import annotations

import re

from harness.cli.main import main


def test_too_many_shots_name_the_query_and_the_shots_that_fit(tiny_hub, fast_recipe, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))  # its runs stay out of the other tests' tables
    sets = [a for s in [*fast_recipe, "seed=43"] for a in ("--set", s)]
    base = [
        "run",
        "--task",
        "easyvqa-tiny",
        "--model",
        "gpt2-frozen",
        "--images",
        "real",
        "--limit",
        "3",
        "--quiet",
        *sets,
    ]
    assert main([*base, "--shots", "40"]) == 2  # the tiny gpt2 has 256 positions
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "easyvqa-tiny" in err and "context of 256" in err and "(40 shots)" in err, err
    fits = int(re.search(r"at most (\d+) shots fit \(--shots \1\)", err).group(1))
    assert 0 < fits < 40
    assert main([*base, "--shots", str(fits + 1)]) == 2  # the bound is tight for that query
    capsys.readouterr()
    for _ in range(3):  # the advice is for the query named; another of the 3 may need fewer shots still
        if main([*base, "--shots", str(fits)]) == 0:
            break
        fits = int(re.search(r"at most (\d+) shots fit", capsys.readouterr().err).group(1))
    else:
        raise AssertionError("the advised shot count never ran")
    assert fits > 0 and "gpt2-frozen" in capsys.readouterr().out  # it ran and printed its table
