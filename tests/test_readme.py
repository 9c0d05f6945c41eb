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


def _scope() -> dict:
    """Tiny stand-ins for the names the README's method blocks take from the user's code."""
    from torch import nn
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten())
    head = nn.Sequential(nn.Linear(8 * 16 * 16, 1), nn.Flatten(0))  # one logit per image
    images = lambda: torch.rand(4, 3, 32, 32, generator=gen)  # noqa: E731
    return {"gen": gen, "trunk": trunk, "head": head, "D": nn.Sequential(trunk, head),
            "x": images(), "y": torch.randint(0, 10, (4,), generator=gen), "num_classes": 10,
            "model": nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)),
            "x_real": images() * 2 - 1, "x_fake": images() * 2 - 1,
            "G": nn.Sequential(nn.Linear(16, 3 * 32 * 32), nn.Tanh(), nn.Unflatten(1, (3, 32, 32))),
            "z": torch.randn(4, 16, generator=gen)}


@pytest.mark.parametrize("tag, results", [
    ("adaptivemix", ["d_loss"]), ("mixing", ["loss", "d_loss_mix"]),
    ("adversarial", ["xr_adv", "xf_adv", "x_adv"]), ("projection", ["d_loss", "g_loss"]),
])
def test_method_examples_run_as_written(tag, results):
    if not README.is_file():
        pytest.skip("README not beside the tests (installed test run)")
    scope = _scope()
    exec(compile(_block(tag), "README.md", "exec"), scope)
    for name in results:
        assert torch.isfinite(scope[name]).all(), name
