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
def _forgotten(plugins_forgotten):
    """Each test's plugins leave the process's registries as they were."""


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


def test_an_option_without_a_default_names_its_flag(tmp_path, capsys):
    needy = tmp_path / "needy_plugin.py"
    needy.write_text(PLUGIN.read_text().replace('"toy"', '"needy"')
                     .replace("weight: float = 0.1", "weight: float"))
    code = main(["classify", "train", "--plugin", str(needy), "--reg", "needy", "--out",
                 str(tmp_path / "run"), *CLASSIFY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "needs the option(s) weight" in err and "give --needy-weight (or --reg-options" in err
    assert not (tmp_path / "run").exists()
    assert main(["classify", "train", "--plugin", str(needy), "--reg", "needy", "--needy-weight",
                 "0.2", "--out", str(tmp_path / "run"), "--dry-run", *CLASSIFY]) == 0


# --- an installed package's plugin (entry points), resume, a plugin discriminator -------------


def _fake_installed_plugin(root: Path, module: str, source: str) -> None:
    """A distribution on ``root`` whose ``robustrep.regularizers`` entry point names ``module``."""
    (root / f"{module}.py").write_text(source)
    info = root / f"{module}_dist-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[robustrep.regularizers]\nx = {module}\n")


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry re-reads its modules and entry points (then is put back as it was)."""
    from robustrep import registry
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_LIVE", dict(registry._LIVE))
    monkeypatch.setattr(registry, "_UNREADABLE", {})
    monkeypatch.setattr(registry, "_loaded", False)
    return registry


def test_an_installed_plugin_acts_without_the_plugin_option(tmp_path, monkeypatch,
                                                            fresh_registry):
    source = PLUGIN.read_text().replace('"toy"', '"eptoy"')
    _fake_installed_plugin(tmp_path, "robustrep_ep_toy", source)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "eptoy" in fresh_registry.list_regularizers("classify")
    assert "robustrep_ep_toy" not in sys.modules  # listed from its source, imported on use
    run = tmp_path / "run"
    assert main(["classify", "train", "--reg", "eptoy", "--out", str(run), *CLASSIFY]) == 0
    assert "robustrep_ep_toy" in sys.modules
    assert any("eptoy/loss" in r for r in _records(run))


def test_a_broken_installed_plugin_is_named_and_breaks_nothing_else(tmp_path, monkeypatch,
                                                                   fresh_registry):
    _fake_installed_plugin(tmp_path, "robustrep_ep_broken", "import no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "adaptivemix" in fresh_registry.list_regularizers("classify")
    with pytest.raises(ValueError, match="robustrep_ep_broken.*ModuleNotFoundError"):
        fresh_registry.parse_combination("eptoy", "classify")


def test_resuming_a_plugin_run_without_its_plugin_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["classify", "train", "--plugin", str(PLUGIN), "--reg", "toy", "--out", str(run),
                 "--stop-after", "1", *CLASSIFY]) == 0
    from robustrep import registry  # as a new process would be: toy not registered
    del registry._REGISTRY["toy"], registry._LIVE["toy"]
    del sys.modules["robustrep_plugin_toy_regularizer"]
    capsys.readouterr()
    assert main(["classify", "train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'toy'" in err and "--plugin" in err
    # classify eval says the same (before: "--reg: unknown regularizer", a flag never given)
    assert main(["classify", "eval", str(run)]) == 2
    assert capsys.readouterr().err.strip() == err.replace("classify train:", "classify eval:", 1)
    assert main(["classify", "train", "--plugin", str(PLUGIN), "--resume", str(run),
                 "--quiet"]) == 0


TOY_D = '''
import torch
from torch import nn
from robustrep.registry import register_discriminator


@register_discriminator("toyd", paper="none", acts={"gan": "D function"})
class ToyD(nn.Module):
    """Linear members on the flattened image.

    Args:
        image_size: input height and width.
        in_channels: image channels.
        members: number of members, >= 1.
    """

    def __init__(self, image_size: int = 16, in_channels: int = 3, members: int = 2):
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        self.members = nn.Linear(in_channels * image_size ** 2, members)

    def forward(self, x):
        return self.members(x.flatten(1))
'''


def test_a_plugin_discriminator_replaces_d_with_its_options(tmp_path, capsys):
    plugin = tmp_path / "toy_d.py"
    plugin.write_text(TOY_D)
    with pytest.raises(SystemExit):
        main(["gan", "train", "--plugin", str(plugin), "--help"])
    out = capsys.readouterr().out
    assert "--toyd-members" in out and "--toyd-image-size" not in out  # the data decides it
    run = tmp_path / "run"
    assert main(["gan", "train", "--plugin", str(plugin), "--reg", "toyd", "--toyd-members", "3",
                 "--out", str(run), *GAN]) == 0
    d = _weights(run, "D")
    assert set(d) == {"members.weight", "members.bias"}, set(d)
    assert d["members.weight"].shape == (3, 1 * 16 * 16)  # built for the data: digits, 1 channel
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["gan", "train", "--plugin", str(plugin), "--reg", "toyd", "--toyd-members", "0",
                 "--out", str(bad), *GAN]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "members must be >= 1, got 0" in err
    assert not bad.exists()


WRONG_RETURNS = '''
import torch
from robustrep.registry import register_regularizer


@register_regularizer("wrongret", paper="a test", acts={"classify": "feature shrinkage",
                                                       "gan": "extra D term"})
class WrongReturns:
    replaces_clean = False

    def __init__(self, what: str = "none"):
        self.what = what

    def feature_terms(self, model, x, generator=None):
        logits = model(x)
        return {"none": None, "nologits": {"loss": logits.sum() * 0},
                "width": {"logits": logits[:, :2], "loss": logits.sum() * 0}}[self.what]

    def extra_d_term(self, score, x_real, x_fake, loss, generator=None):
        s = score(x_real)
        return {"none": None, "vector": s, "float": 0.5}[self.what]
'''


@pytest.mark.parametrize("program, what, words", [
    ("gan", "vector", "--reg wrongret: extra_d_term returned a float32 tensor of shape [8]; it "
                      "must return the loss as a floating-point scalar tensor"),
    ("gan", "float", "--reg wrongret: extra_d_term returned a float;"),
    ("classify", "none", "--reg wrongret: feature_terms returned a NoneType; it must return a "
                         "dict with 'logits' and 'loss'"),
    ("classify", "nologits", "returned a dict with keys loss; it must return a dict with"),
    ("classify", "width", "returned logits as a float32 tensor of shape [8, 2]; they must be "
                          "[8, 3] (batch, classes)"),
])
def test_a_protocol_method_returning_the_wrong_thing_is_one_line(program, what, words, tmp_path,
                                                                 capsys):
    # were tracebacks deep in autograd, the logger or the cross-entropy, not naming the plugin
    plugin = tmp_path / "wrongret.py"
    plugin.write_text(WRONG_RETURNS)
    args = CLASSIFY if program == "classify" else GAN
    assert main([program, "train", "--plugin", str(plugin), "--reg", "wrongret",
                 "--wrongret-what", what, "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    sys.modules.pop("robustrep_plugin_wrongret", None)
