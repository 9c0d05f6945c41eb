"""A GAN network family registered outside the package (tests/plugins/tiny_gan.py) trains with
``--plugin`` and ``--arch tinyconv``: its options are generated flags, a bad one is one line
before the run folder, and its runs resume (bit for bit), sample and evaluate only with the
plugin loaded again."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustrep.tasks.cli import main
from robustrep.tasks.common.config import ConfigError

from .test_resume import _assert_equal_states

TESTS = Path(__file__).resolve().parents[2]
PLUGIN = TESTS / "plugins" / "tiny_gan.py"
MODULE = "robustrep_plugin_tiny_gan"  # the name tasks/cli.py imports a .py plugin under

TINY = ["--image-size", "16", "--g-width", "4", "--d-width", "6", "--z-dim", "8",
        "--batch-size", "8", "--steps", "2", "--eval-every", "0", "--final-eval", "false",
        "--ckpt-every", "2", "--log-every", "1", "--seed", "0", "--device", "cpu", "--quiet"]
TRAIN = ["gan", "train", "--plugin", str(PLUGIN), "--arch", "tinyconv", *TINY]


@pytest.fixture(autouse=True)
def _forgotten(plugins_forgotten):
    """Each test's plugin families leave the process's registries as they were."""


def _forget_plugin():
    """As a new process would be: tinyconv not registered."""
    from robustrep import nets
    for table in nets._REGISTRY.values():
        table.pop("tinyconv", None)
    sys.modules.pop(MODULE, None)


def _state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=False)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_plugin_family_trains_with_its_options(tmp_path, records):
    run = tmp_path / "run"
    assert main([*TRAIN, "--tinyconv-kernel", "5", "--tinyconv-slope", "0.1",
                 "--out", str(run)]) == 0
    state = _state(run)
    g, d = state["G"], state["D"]
    # G: fc to a 4-channel 8x8 map (--g-width), up-conv, then the 5x5 conv to 1 digit channel
    assert g["net.0.weight"].shape == (4 * 8 * 8, 8)  # z_dim 8 from --z-dim
    assert g["net.4.weight"].shape == (1, 4, 5, 5)
    # D: its first conv has --d-width channels and reads the data's one channel
    assert d["trunk.0.weight"].shape == (6, 1, 4, 4)
    saved = json.loads((run / "config.json").read_text())
    assert saved["arch"] == "tinyconv"
    assert saved["arch_options"] == {"tinyconv": {"kernel": 5, "slope": 0.1}}
    losses = [r for r in records(run) if "loss/d/total" in r]
    assert [r["step"] for r in losses] == [1, 2]
    assert all(torch.isfinite(torch.tensor(r["loss/d/total"])) for r in losses)


def test_the_family_option_reaches_the_network_it_names(tmp_path):
    """--tinyconv-slope is the discriminator's LeakyReLU slope (the G has no such option)."""
    from robustrep.tasks.gan.config import GanConfig
    from robustrep.tasks.gan.models import build_discriminator, build_generator
    from robustrep.tasks.cli import load_plugins
    load_plugins(["--plugin", str(PLUGIN)])
    cfg = GanConfig(arch="tinyconv", image_size=16, arch_options={"tinyconv": {"slope": 0.3}})
    d = build_discriminator(cfg, (3, 16, 16))
    assert d.trunk[1].negative_slope == 0.3
    assert build_generator(cfg, (3, 16, 16)).net[-2].kernel_size == (3, 3)  # its own default


def test_help_lists_the_family_options_and_an_unknown_arch_lists_the_families(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["gan", "train", "--plugin", str(PLUGIN), "--help"])
    out = capsys.readouterr().out
    assert "--tinyconv-kernel" in out and "--tinyconv-slope" in out
    assert "--tinyconv-width" not in out  # --g-width / --d-width feed it
    run = tmp_path / "run"
    assert main(["gan", "train", "--plugin", str(PLUGIN), "--arch", "tinyconvv",
                 "--out", str(run), *TINY]) == 2
    err = _one_line(capsys)
    assert "got 'tinyconvv'" in err and "dcgan, sngan, mlp, stylegan2, tinyconv" in err
    assert not run.exists()


@pytest.mark.parametrize("extra, message", [
    (["--tinyconv-kernel", "2"], "its generator refused: kernel must be odd and >= 1, got 2"),
    (["--tinyconv-slope", "1.5"], "its discriminator refused: slope must be in [0, 1), got 1.5"),
    (["--image-size", "32", "--dataset", "ring", "--arch", "tinyconv"],
     "tinyconv needs images (C, S, S)"),
    (["--spectral-norm"], "--spectral-norm: the discriminator of --arch tinyconv takes no"),
    (["--arch-options", '{"tinyconv": {"depth": 2}}'],
     "--arch tinyconv takes no option(s) depth; its options: kernel, slope"),
    (["--arch-options", '{"dcgan": {"kernel": 2}}'], "set options of dcgan, which --arch does"),
    (["--arch", "dcgan", "--arch-options", '{"dcgan": {"width": 2}}'],
     "--arch dcgan is built in; its options are this program's own"),
], ids=["g-option", "d-option", "2-d-data", "spectral-norm", "unknown-option", "other-family",
        "built-in-family"])
def test_a_bad_family_option_is_one_line_and_makes_no_run_folder(extra, message, tmp_path,
                                                                 capsys):
    run = tmp_path / "run"
    assert main([*TRAIN, *extra, "--out", str(run)]) == 2
    assert message in _one_line(capsys)
    assert not run.exists()


BROKEN = '''
from torch import nn
from robustrep.nets import register_network


@register_network("brokenfam", "generator")
class G(nn.Module):
    def __init__(self, z_dim, shape, flat: bool = False, lie: bool = False, crash: bool = False,
                 double: bool = False):
        super().__init__()
        if crash:
            raise RuntimeError("cannot build G")
        self.z_dim, self.shape, self.flat, self.double = z_dim + lie, shape, flat, double
        self.fc = nn.Linear(z_dim, 4)

    def forward(self, z):
        x = self.fc(z)
        x = x if self.flat else x.new_zeros(len(z), *self.shape)
        return x.double() if self.double else x


@register_network("brokenfam", "discriminator")
def d(shape, one_logit: bool = False):
    layers = [nn.Flatten(), nn.Linear(shape[0] * shape[1] * shape[2], 1)]
    return nn.Sequential(*layers, *([nn.Flatten(0)] if one_logit else []))  # not split
'''


@pytest.mark.parametrize("extra, message", [
    (["--brokenfam-lie"], "its generator has no z_dim attribute equal to --z-dim 8"),
    (["--brokenfam-flat"], "its generator maps z [2, 8] to [2, 4], not to samples [2, 1, 16, 16]"),
    ([], "its discriminator maps samples [2, 1, 16, 16] to [2, 1], not to one logit per sample"),
    (["--brokenfam-one-logit", "--reg", "adaptivemix"],
     "--reg adaptivemix cannot use the discriminator of --arch brokenfam: cannot split"),
    # were tracebacks: a factory's own error other than TypeError/ValueError, and float64 samples
    (["--brokenfam-crash"], "--arch brokenfam: its generator raised RuntimeError: cannot build G"),
    (["--brokenfam-double"], "--arch brokenfam: its generator returns torch.float64 samples"),
], ids=["z-dim", "g-shape", "d-shape", "d-not-split", "g-raises", "g-float64"])
def test_a_family_that_breaks_the_contract_is_one_line(extra, message, tmp_path, capsys):
    plugin = tmp_path / "broken_family.py"
    plugin.write_text(BROKEN)
    run = tmp_path / "run"
    assert main(["gan", "train", "--plugin", str(plugin), "--arch", "brokenfam", *TINY, *extra,
                 "--out", str(run)]) == 2
    assert message in _one_line(capsys)
    assert not run.exists()
    sys.modules.pop("robustrep_plugin_broken_family", None)


@pytest.mark.parametrize("reg", ["adaptivemix,asgan", "rpgan,mixup", "dat,cutmix"])
def test_a_plugin_family_takes_the_regularizers(reg, tmp_path, records):
    run = tmp_path / "run"
    assert main([*TRAIN, "--reg", reg, "--out", str(run)]) == 0
    keys = {k for r in records(run) for k in r}
    assert "loss/d/total" in keys and "loss/g/total" in keys, keys


@pytest.mark.parametrize("options, message", [
    (dict(arch="mlp", dataset="digits"), "arch mlp is for the 2-D mixtures"),
    (dict(arch="dcgan", dataset="grid"), "use arch mlp"),
    (dict(arch="sngan", image_size=16), "arch sngan is the 32x32 SNGAN-ResNet"),
    (dict(arch="tinyconv", w_dim=8), "--w-dim applies only with --arch stylegan2"),
    (dict(arch="tinyconv", reg="ssgan"), "--reg ssgan (a D auxiliary task) needs --arch"),
    (dict(arch="tinyconv", image_size=24), "image_size must be a power of 2"),
])
def test_the_built_in_checks_still_hold(options, message):
    from robustrep.tasks.cli import load_plugins
    load_plugins(["--plugin", str(PLUGIN)])
    from robustrep.tasks.gan.config import GanConfig
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GanConfig(**options)


def test_resume_equals_uninterrupted(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    common = [*TRAIN, "--ckpt-every", "2", "--tinyconv-slope", "0.1"]
    assert main([*common, "--steps", "4", "--out", str(full)]) == 0
    assert main([*common, "--steps", "4", "--stop-after", "2", "--out", str(part)]) == 0
    assert _state(part)["step"] == 2
    assert main(["gan", "train", "--plugin", str(PLUGIN), "--resume", str(part),
                 "--quiet"]) == 0
    _assert_equal_states(_state(full), _state(part))


def test_a_run_without_its_plugin_is_refused_in_one_line_then_works_with_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TRAIN, "--out", str(run)]) == 0
    files = sorted(run.rglob("*"))
    _forget_plugin()
    capsys.readouterr()
    for argv in (["gan", "train", "--resume", str(run), "--steps", "3", "--quiet"],
                 ["gan", "sample", str(run), "--num", "4"],
                 ["gan", "eval", str(run), "--num", "16"]):
        assert main(argv) == 2, argv
        err = _one_line(capsys)
        assert "network family (--arch) 'tinyconv'" in err and "--plugin" in err, err
    assert sorted(run.rglob("*")) == files  # refused before any work
    grid = tmp_path / "grid.png"
    assert main(["gan", "sample", str(run), "--num", "4", "--grid", str(grid),
                 "--plugin", str(PLUGIN)]) == 0
    assert grid.is_file()
    assert main(["gan", "train", "--plugin", str(PLUGIN), "--resume", str(run), "--steps", "3",
                 "--quiet"]) == 0
    assert _state(run)["step"] == 3


@pytest.mark.subprocess
def test_an_unknown_arch_imports_no_torch(tmp_path):
    code = ("import sys; from robustrep.tasks.cli import main; "
            "code = main(['gan', 'train', '--arch', 'nope']); "
            "print(code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.stdout.strip() == "2 False", out.stderr
    assert "--arch must be one of dcgan, sngan, mlp, stylegan2" in out.stderr


def test_a_plugin_family_run_is_evaluated_with_its_plugin(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TRAIN, "--out", str(run)]) == 0
    assert main(["gan", "eval", str(run), "--num", "16", "--plugin", str(PLUGIN)]) == 0
    assert json.loads((run / "eval.json").read_text())["step"] == 2


# --- an installed package's family (entry-point group robustrep.networks) --------------------


def _fake_installed_family(root: Path, module: str) -> None:
    """A distribution on ``root`` whose ``robustrep.networks`` entry point names ``module``, a
    copy of the tinyconv plugin registered as ``eptiny``."""
    (root / f"{module}.py").write_text(PLUGIN.read_text().replace('"tinyconv"', '"eptiny"'))
    info = root / f"{module}_dist-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}-dist\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[robustrep.networks]\nnets = {module}\n")


def test_an_installed_family_trains_and_resumes_without_the_plugin_option(tmp_path, monkeypatch,
                                                                           capsys):
    from robustrep import nets
    module = "robustrep_ep_tinygan"
    _fake_installed_family(tmp_path, module)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(nets, "_declared", None)  # the entry points are read again
    monkeypatch.delitem(sys.modules, module, raising=False)
    assert "eptiny" in nets.list_networks("discriminator")
    with pytest.raises(SystemExit):
        main(["gan", "train", "--help"])
    assert "--eptiny-kernel" in capsys.readouterr().out  # its options, read from the source
    assert module not in sys.modules  # imported when a run builds it, not for --help
    run = tmp_path / "run"
    assert main(["gan", "train", "--arch", "eptiny", "--eptiny-kernel", "5", *TINY,
                 "--out", str(run)]) == 0
    assert module in sys.modules
    assert _state(run)["G"]["net.4.weight"].shape[-1] == 5
    assert main(["gan", "train", "--resume", str(run), "--steps", "3", "--quiet"]) == 0
    assert _state(run)["step"] == 3


def test_a_plugin_registering_half_a_family_is_told_which_half(tmp_path, capsys):
    # was: "--arch must be one of dcgan, ..." although the plugin registered onlyg's generator
    plugin = tmp_path / "half_family.py"
    plugin.write_text("from torch import nn\nfrom robustrep.nets import register_network\n\n"
                      "@register_network('onlyg', 'generator')\nclass G(nn.Module):\n"
                      "    def __init__(self, z_dim, shape):\n        super().__init__()\n")
    assert main(["gan", "train", "--plugin", str(plugin), "--arch", "onlyg", *TINY,
                 "--out", str(tmp_path / "run")]) == 2
    assert "--arch onlyg: a plugin registers its generator but no discriminator" in \
        _one_line(capsys)
    sys.modules.pop("robustrep_plugin_half_family", None)


def test_a_plugin_calling_sys_exit_at_import_is_one_line(tmp_path, capsys):
    # was: robustrep ended with the plugin's exit code 3 and printed nothing
    plugin = tmp_path / "exits.py"
    plugin.write_text("import sys\nsys.exit(3)\n")
    assert main(["gan", "train", "--plugin", str(plugin), "--dry-run"]) == 2
    assert "--plugin " in (err := _one_line(capsys)) and "it called sys.exit(3)" in err
    sys.modules.pop("robustrep_plugin_exits", None)
