"""Mistakes a user makes: each exits 2 with one short line on stderr naming what was wrong, and no
traceback; ``--debug`` shows the traceback.

The cases run in-process through ``cli.main(argv)`` (the console script is ``main`` behind
``sys.exit``); two of them also run through the installed ``robustrep`` console script in a
fresh process (marked ``subprocess``), which checks the entry point and the real stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustrep.tasks.cli import main

SCRIPT = shutil.which("robustrep", path=str(Path(sys.executable).parent)) or shutil.which(
    "robustrep")
NO_CUDA = not torch.cuda.is_available()


def run_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    assert SCRIPT, "the robustrep console script is not installed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=env)


def run_main(args: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of ``robustrep ARGS`` in this process: argparse's own errors leave
    through SystemExit, the programs' through main's return value."""
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


# (files to write into the working folder, arguments, text the one line must hold)
CASES = {
    "am-alpha-abc": ({}, ["gan", "train", "--am-alpha", "abc"],
                     "argument --am-alpha: must be a finite number > 0; got 'abc'"),
    "lr-d-nan": ({}, ["gan", "train", "--lr-d", "nan"],
                 "argument --lr-d: must be a finite number > 0; got 'nan'"),
    "classify-steps-negative": ({}, ["classify", "train", "--steps", "-5"],
                                "argument --steps: must be an integer in [1, 2147483647]"
                                "; got '-5'"),
    "classify-batch-size-0": ({}, ["classify", "train", "--batch-size", "0"],
                              "argument --batch-size: must be an integer in [1, 2147483647]"
                              "; got '0'"),
    "classify-ckpt-every-neg": ({}, ["classify", "train", "--ckpt-every=-1"],
                                "argument --ckpt-every: must be an integer in [0, 2147483647]"
                                "; got '-1'"),
    "classify-log-every-neg": ({}, ["classify", "train", "--log-every=-1"],
                               "argument --log-every: must be an integer in [0, 2147483647]"
                               "; got '-1'"),
    "gan-sample-num-0": ({}, ["gan", "sample", "RUN", "--num", "0"],
                         "argument --num: must be an integer in [1, 2147483647]; got '0'"),
    "ood-batch-size-0": ({}, ["ood", "score", "RUN", "--batch-size", "0"],
                         "argument --batch-size: must be an integer in [1, 2147483647]; got '0'"),
    "config-steps-abc": ({"c.yaml": "steps: abc\n"}, ["gan", "train", "--config", "c.yaml"],
                         "robustrep gan train: error: config file c.yaml: steps must be an integer "
                         "in [1, 2147483647]; got 'abc'"),
    "config-yaml-syntax": ({"c.yaml": "steps: 3\nreg: [none,\n"},
                           ["classify", "train", "--config", "c.yaml"],
                           "robustrep classify train: error: config file c.yaml line 3, column 1: "
                           "YAML syntax error"),
    "config-spectral-norm-maybe": ({"c.yaml": "spectral_norm: maybe\n"},
                                   ["gan", "train", "--config", "c.yaml"],
                                   "config file c.yaml: spectral_norm must be true or false; "
                                   "got 'maybe'"),
    "fp16-on-cpu": ({}, ["gan", "train", "--amp", "fp16", "--device", "cpu", "--out", "r"],
                    "robustrep gan train: error: --amp fp16 needs a CUDA device"),
    "classify-fp16-on-cpu": ({}, ["classify", "train", "--amp", "fp16", "--device", "cpu",
                                  "--out", "r"],
                             "robustrep classify train: error: --amp fp16 needs a CUDA device"),
}
if NO_CUDA:
    CASES["device-cuda"] = ({}, ["gan", "train", "--device", "cuda", "--out", "r"],
                            "robustrep gan train: error: --device cuda: CUDA is not available")
    CASES["classify-device-cuda"] = ({}, ["classify", "train", "--device", "cuda", "--out", "r"],
                                     "robustrep classify train: error: --device cuda: CUDA is not "
                                     "available")
# The cases that also run through the console script: an argparse error and a program's own.
SCRIPT_CASES = ["am-alpha-abc", "config-yaml-syntax"]


def _write_files(case: str, folder: Path) -> list[str]:
    files, args, _ = CASES[case]
    for name, text in files.items():
        (folder / name).write_text(text)
    return args


def _check_one_line(case: str, code: int, err: str, folder: Path) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert CASES[case][2] in err
    assert not (folder / "r").exists()  # nothing written for a run that cannot start


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_error_is_one_line_exit_2(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # relative paths (c.yaml, r) as the user types them
    args = _write_files(case, tmp_path)
    code, err = run_main(args, capsys)
    _check_one_line(case, code, err, tmp_path)


@pytest.mark.subprocess
@pytest.mark.parametrize("case", SCRIPT_CASES)
def test_console_script_error_is_one_line_exit_2(case, tmp_path):
    args = _write_files(case, tmp_path)
    result = run_script(args, tmp_path)
    _check_one_line(case, result.returncode, result.stderr, tmp_path)


@pytest.mark.parametrize("args", [["--debug", "gan", "train"], ["gan", "train", "--debug"]],
                         ids=["before", "after"])
def test_debug_shows_the_traceback_and_keeps_the_exit_code(args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--amp", "fp16", "--device", "cpu", "--out", "r"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "Error: --amp fp16 needs a CUDA device" in err
    assert err.rstrip().splitlines()[-1].startswith("robustrep gan train: error: --amp fp16")


@pytest.mark.subprocess
def test_debug_shows_the_traceback(tmp_path):
    result = run_script(["gan", "train", "--debug", "--amp", "fp16", "--device", "cpu", "--out",
                         "r"], tmp_path)
    assert result.returncode == 2  # the error's code, as without --debug
    assert "Traceback" in result.stderr and "Error: --amp fp16 needs a CUDA device" in result.stderr
