"""A plugin regularizer's own failures in ``gan train``: an exception its code raises in a
training step is one line naming it (robustrep's own bugs keep their traceback), and its
options without an annotation get flags of their default's kind."""

import json
import sys

import pytest

from robustrep.tasks.cli import main

GAN = ["--image-size", "16", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
       "--batch-size", "8", "--steps", "1", "--eval-every", "0", "--final-eval", "false",
       "--ckpt-every", "1", "--log-every", "1", "--seed", "0", "--device", "cpu", "--quiet"]

RAISER = '''
from robustrep.registry import register_regularizer


def _lookup(table, key):
    return table[key]


@register_regularizer("raiser", paper="a test", acts={"gan": "extra D term"})
class Raiser:
    replaces_clean = False

    def __init__(self, weight=0.5, count=2, mode="sum", clip=False, where=None):
        self.options = dict(weight=weight, count=count, mode=mode, clip=clip)

    def extra_d_term(self, score, x_real, x_fake, loss, generator=None):
        if self.mode_is_score():
            return score(x_real).mean()  # robustrep's D: its failure is robustrep's
        return _lookup({}, "missing")  # the plugin's own bug, in a helper of its module

    def mode_is_score(self):
        return self.options["mode"] == "score"
'''


@pytest.fixture
def raiser(tmp_path, plugins_forgotten):
    path = tmp_path / "raiser_plugin.py"
    path.write_text(RAISER)
    yield path
    sys.modules.pop("robustrep_plugin_raiser_plugin", None)


def test_a_plugin_raising_in_a_training_step_is_one_line(raiser, tmp_path, capsys):
    """Was: a bare traceback through steps.py, as if robustrep were broken."""
    argv = ["gan", "train", "--plugin", str(raiser), "--reg", "raiser", *GAN]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"robustrep gan train: error: --reg raiser: the plugin module {raiser} raised "
                   f"KeyError: 'missing' (in _lookup, line 6 of raiser_plugin.py); it is the "
                   f"plugin's code, not robustrep's: --debug shows the traceback"]
    assert main(["--debug", *argv, "--out", str(tmp_path / "run2")]) == 2
    shown = capsys.readouterr().err
    assert "Traceback (most recent call last)" in shown and 'table[key]' in shown
    assert shown.strip().splitlines()[-1] == err[0]


def test_robustreps_own_error_under_a_plugin_keeps_its_traceback(raiser, tmp_path,
                                                                 monkeypatch):
    """The plugin calls robustrep's D (``score``); an error raised in there is robustrep's,
    not swallowed into the plugin's line."""
    from robustrep.tasks.gan import steps

    def broken(ctx, x):  # in the D pass of the plugin's score only, under steps.py's frame
        if sys._getframe(1).f_code.co_name == "score":
            raise RuntimeError("a bug in robustrep's augment")
        return real(ctx, x)
    real = steps.augment
    monkeypatch.setattr(steps, "augment", broken)
    with pytest.raises(RuntimeError, match="a bug in robustrep's augment"):
        main(["gan", "train", "--plugin", str(raiser), "--reg", "raiser", "--raiser-mode",
              "score", *GAN, "--out", str(tmp_path / "run")])


def test_unannotated_plugin_options_get_flags_of_their_defaults_kind(raiser, tmp_path,
                                                                     capsys):
    """Was: ``weight=0.5`` with no annotation got no --raiser-weight, silently."""
    with pytest.raises(SystemExit):
        main(["gan", "train", "--plugin", str(raiser), "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for flag in ("--raiser-weight FLOAT", "--raiser-count INT", "--raiser-mode STR",
                 "--raiser-clip [BOOL]"):
        assert flag in help_text
    assert "--raiser-where" not in help_text  # a None default says no kind: the help says so
    assert ("raiser's 'where' has no flag (no annotation, and its default None names no kind): "
            "annotate it (e.g. where: float | None = None) or set it in a --config file as "
            "reg_options: {raiser: {where: VALUE}}") in help_text
    assert main(["gan", "train", "--plugin", str(raiser), "--reg", "raiser", "--raiser-weight",
                 "2", "--raiser-count", "3", "--raiser-clip", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["reg_options"] == {"raiser": {"weight": 2.0, "count": 3, "clip": True}}
    assert isinstance(cfg["reg_options"]["raiser"]["weight"], float)
    with pytest.raises(SystemExit) as exit_info:  # argparse's refusal of its INT
        main(["gan", "train", "--plugin", str(raiser), "--reg", "raiser", "--raiser-count",
              "2.5", "--dry-run"])
    assert exit_info.value.code == 2
    assert "argument --raiser-count: must be an integer; got '2.5'" in capsys.readouterr().err
