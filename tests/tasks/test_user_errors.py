"""Mistakes a user makes, through the installed ``robustrep`` console script in a subprocess:
each exits 2 with one short line on stderr naming what was wrong, and no traceback; ``--debug``
shows the traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = shutil.which("robustrep", path=str(Path(sys.executable).parent)) or shutil.which(
    "robustrep")
NO_CUDA = not torch.cuda.is_available()


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    assert SCRIPT, "the robustrep console script is not installed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([SCRIPT, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=env)


# (files to write into the working folder, arguments, text the one line must hold)
CASES = {
    "am-alpha-abc": ({}, ["gan", "train", "--am-alpha", "abc"],
                     "argument --am-alpha: must be a finite number > 0; got 'abc'"),
    "lr-d-nan": ({}, ["gan", "train", "--lr-d", "nan"],
                 "argument --lr-d: must be a finite number > 0; got 'nan'"),
    "classify-steps-negative": ({}, ["classify", "train", "--steps", "-5"],
                                "argument --steps: must be an integer >= 1; got '-5'"),
    "classify-batch-size-0": ({}, ["classify", "train", "--batch-size", "0"],
                              "argument --batch-size: must be an integer >= 1; got '0'"),
    "classify-ckpt-every-neg": ({}, ["classify", "train", "--ckpt-every=-1"],
                                "argument --ckpt-every: must be an integer >= 0; got '-1'"),
    "classify-log-every-neg": ({}, ["classify", "train", "--log-every=-1"],
                               "argument --log-every: must be an integer >= 0; got '-1'"),
    "gan-sample-num-0": ({}, ["gan", "sample", "RUN", "--num", "0"],
                         "argument --num: must be an integer >= 1; got '0'"),
    "ood-batch-size-0": ({}, ["ood", "score", "RUN", "--batch-size", "0"],
                         "argument --batch-size: must be an integer >= 1; got '0'"),
    "config-steps-abc": ({"c.yaml": "steps: abc\n"}, ["gan", "train", "--config", "c.yaml"],
                         "robustrep gan: error: config file c.yaml: steps must be an integer "
                         ">= 1; got 'abc'"),
    "config-yaml-syntax": ({"c.yaml": "steps: 3\nreg: [none,\n"},
                           ["classify", "train", "--config", "c.yaml"],
                           "robustrep classify: error: config file c.yaml line 3, column 1: "
                           "YAML syntax error"),
    "config-spectral-norm-maybe": ({"c.yaml": "spectral_norm: maybe\n"},
                                   ["gan", "train", "--config", "c.yaml"],
                                   "config file c.yaml: spectral_norm must be true or false; "
                                   "got 'maybe'"),
    "fp16-on-cpu": ({}, ["gan", "train", "--amp", "fp16", "--device", "cpu", "--out", "r"],
                    "robustrep gan: error: --amp fp16 needs a CUDA device"),
    "classify-fp16-on-cpu": ({}, ["classify", "train", "--amp", "fp16", "--device", "cpu",
                                  "--out", "r"],
                             "robustrep classify: error: --amp fp16 needs a CUDA device"),
}
if NO_CUDA:
    CASES["device-cuda"] = ({}, ["gan", "train", "--device", "cuda", "--out", "r"],
                            "robustrep gan: error: --device cuda: CUDA is not available")
    CASES["classify-device-cuda"] = ({}, ["classify", "train", "--device", "cuda", "--out", "r"],
                                     "robustrep classify: error: --device cuda: CUDA is not "
                                     "available")


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_error_is_one_line_exit_2(case, tmp_path):
    files, args, message = CASES[case]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run(args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "r").exists()  # nothing written for a run that cannot start


def test_debug_shows_the_traceback(tmp_path):
    for args in (["--debug", "gan", "train"], ["gan", "train", "--debug"]):
        result = run([*args, "--amp", "fp16", "--device", "cpu", "--out", "r"], tmp_path)
        assert result.returncode == 1  # an uncaught exception
        assert "Traceback" in result.stderr and "UserError: --amp fp16" in result.stderr
