"""The README's library example runs as written (on two tiny batches)."""

import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(tag: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- example: {tag}.*?-->\n```python\n(.*?)```", text, re.S)
    assert match, f"README has no example block {tag!r}"
    return match.group(1)


def test_own_training_loop_example_trains():
    if not README.is_file():
        pytest.skip("README not beside the tests (installed test run)")
    gen = torch.Generator().manual_seed(1)
    loader = [(torch.rand(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen))
              for _ in range(2)]
    scope = {"loader": loader}
    exec(compile(_block("own-loop"), "README.md", "exec"), scope)
    assert torch.isfinite(scope["loss"])
    assert type(scope["mix"]).__name__ == "CutMix" and type(scope["attack"]).__name__ == "PGD"


def test_ci_runs_the_readmes_test_commands():
    ci = README.parent / ".ci" / "run"
    if not ci.is_file():
        pytest.skip("not a checkout (installed test run)")
    text = README.read_text()
    block = re.search(r"Run the tests:\n\n```bash\n(.*?)```", text, re.S)
    assert block, "README has no 'Run the tests:' block"
    commands = block.group(1).strip().splitlines()
    assert commands and set(commands) <= set(ci.read_text().splitlines()), commands
