"""docs/gan.md's Python block runs as written on a small run, and gives what ``gan sample``
saves for the same seed."""

import re
from pathlib import Path

import pytest
import torch

from robustrep.tasks.cli import main

DOC = Path(__file__).resolve().parents[3] / "docs" / "gan.md"
RUN = ["--image-size", "16", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
       "--batch-size", "8", "--steps", "2", "--eval-every", "0", "--final-eval", "false",
       "--ckpt-every", "2", "--log-every", "1", "--seed", "0", "--device", "cpu", "--quiet"]


def test_the_run_generator_block_samples_what_gan_sample_saves(tmp_path, monkeypatch):
    if not DOC.is_file():
        pytest.skip("docs not beside the tests (installed test run)")
    block = re.search(r"<!-- example: run-generator -->\n```python\n(.*?)```", DOC.read_text(),
                      re.S).group(1)
    monkeypatch.chdir(tmp_path)  # the block's relative run folder
    assert main(["gan", "train", "--out", "runs/gan/digits", *RUN]) == 0
    scope = {}
    exec(compile(block, str(DOC), "exec"), scope)
    assert scope["images"].shape == (16, 1, 16, 16) and scope["step"] == 2
    assert scope["more"].shape == (4, 1, 16, 16)
    assert main(["gan", "sample", "runs/gan/digits", "--num", "16", "--seed", "0", "--pt",
                 "s.pt"]) == 0
    saved = torch.load("s.pt", weights_only=True)["samples"]
    assert torch.equal(scope["images"], saved)
    assert scope["images"].abs().max() <= 1
