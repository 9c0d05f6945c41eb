"""A regularizer registered outside the package (tests/plugins/toy_regularizer.py) acts in both
training programs through ``--plugin`` and ``--reg toy``; a misplaced one is refused in one line."""

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from robustrep.tasks.cli import main

TESTS = Path(__file__).resolve().parents[1]
PLUGIN = TESTS / "plugins" / "toy_regularizer.py"
DOCS = TESTS.parent / "docs" / "architecture.md"

CLASSIFY = ["--model", "test_resnet", "--image-size", "16", "--batch-size", "8", "--steps", "2",
            "--eval-every", "0", "--ckpt-every", "1", "--log-every", "1", "--classes", "0,1,2",
            "--seed", "0", "--quiet"]
GAN = ["--image-size", "16", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
       "--batch-size", "8", "--steps", "2", "--eval-every", "0", "--final-eval", "false",
       "--ckpt-every", "2", "--log-every", "1", "--seed", "0", "--device", "cpu", "--quiet"]


@pytest.fixture(autouse=True)
def _registry_restored():
    """Each test's plugins leave the process's registry as it was (other tests list it)."""
    from robustrep import registry
    before = set(registry._REGISTRY)
    yield
    for name in set(registry._REGISTRY) - before:  # what this test's plugins registered
        if not registry._REGISTRY[name].module.startswith("robustrep."):
            del registry._REGISTRY[name]
            registry._LIVE.pop(name, None)
    for name in [m for m in sys.modules if m.startswith("robustrep_plugin_")]:
        del sys.modules[name]


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run: Path, key: str) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=False)[key]


def _differ(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


def test_toy_plugin_acts_in_classify_train(tmp_path):
    runs = {}
    for reg in ("toy", "none"):
        runs[reg] = tmp_path / reg
        assert main(["classify", "train", "--plugin", str(PLUGIN), "--reg", reg, "--out",
                     str(runs[reg]), *CLASSIFY]) == 0
    keys = {k for r in _records(runs["toy"]) for k in r}
    assert {"toy/loss", "toy/penalty"} <= keys, keys
    assert not any("toy" in k for r in _records(runs["none"]) for k in r)
    assert _differ(_weights(runs["toy"], "model"), _weights(runs["none"], "model"))


def test_toy_plugin_acts_in_gan_train(tmp_path):
    runs = {}
    for reg in ("toy", "none"):
        runs[reg] = tmp_path / reg
        assert main(["gan", "train", "--plugin", str(PLUGIN), "--reg", reg, "--out",
                     str(runs[reg]), *GAN]) == 0
    toy = [r["loss/d/toy"] for r in _records(runs["toy"]) if "loss/d/toy" in r]
    assert len(toy) == 2 and all(v > 0 for v in toy)
    assert _differ(_weights(runs["toy"], "D"), _weights(runs["none"], "D"))


def test_a_class_that_lacks_its_places_protocol_is_refused_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text('from robustrep.registry import register_regularizer\n\n\n'
                   '@register_regularizer("badreg", paper="none", '
                   'acts={"classify": "input mixing"})\n'
                   'class Bad:\n    """Registered, but with no mix_inputs."""\n')
    code = main(["classify", "train", "--plugin", str(bad), "--reg", "badreg", "--out",
                 str(tmp_path / "run"), *CLASSIFY])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "badreg" in err and "InputMixing" in err and "mix_inputs" in err
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_a_plugin_that_does_not_import_is_one_line(tmp_path, capsys):
    assert main(["--plugin", "no_such_module_xyz", "classify", "train"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robustrep: error: --plugin no_such_module_xyz: cannot import")
    assert len(err.splitlines()) == 1


def test_the_docs_walk_through_is_the_plugin_module():
    if not DOCS.is_file():
        pytest.skip("docs not beside the tests")
    match = re.search(r"<!-- example: plugin.*?-->\n```python\n(.*?)```", DOCS.read_text(), re.S)
    assert match, "docs/architecture.md has no plugin example block"
    assert match.group(1) == PLUGIN.read_text()


def test_the_plugins_options_are_generated_flags(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["classify", "train", "--plugin", str(PLUGIN), "--help"])
    assert "--toy-weight" in capsys.readouterr().out
    code = main(["classify", "train", "--plugin", str(PLUGIN), "--reg", "toy", "--toy-weight",
                 "-1", "--out", str(tmp_path / "run"), *CLASSIFY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "weight must be >= 0, got -1" in err
    assert not (tmp_path / "run").exists()
